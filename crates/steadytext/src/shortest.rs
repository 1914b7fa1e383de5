//! The shortest completion of a regular expression's match, found on the pattern's Thompson NFA.
//!
//! The budget guard (`generate.rs`) needs, after every token, a completion of the output that
//! still fits what is left of `max_tokens`. llguidance's matcher answers "may this byte come
//! next" but has no notion of state identity, so a walk over it cannot tell a loop from progress:
//! in `[a-z0-9.]+@[a-z]+\.[a-z]{2,}` every letter keeps it in the first loop, and a walk that
//! prefers letters never reaches `@`. For a regex (and a list of choices, which is compiled to
//! one) the pattern's NFA is used instead.
//!
//! Why the NFA and not a DFA: a DFA's states are sets of NFA states, and patterns with classes
//! in nested repetitions (`(ab{2,}|\d*.{1,3}.{3}(-?\d*ab+[a-z0-9.-]+)?){3}...`, found by `make
//! property`) have more of them than any bound a search can afford, so a breadth-first search
//! over the DFA gave up. The NFA has one state per piece of the pattern, so the distance from
//! each state to a match is computed once, at construction, by one breadth-first search over
//! its reversed edges (linear in the NFA's size); a completion is then read off greedily from
//! the set of states the output leads to, one byte per step. Exact, whatever the pattern.

use std::cell::RefCell;
use std::collections::VecDeque;

use regex_automata::nfa::thompson::{self, State, WhichCaptures, NFA};
use regex_automata::util::look::{Look, LookSet};
use regex_automata::util::primitives::StateID;

/// The most memory the pattern's NFA may take: a larger pattern is left to the walk.
const NFA_BYTES: usize = 16 << 20;
/// No match is reachable from the state.
const UNREACHABLE: u32 = u32::MAX;

/// A pattern's NFA with, for each state, the fewest bytes that lead from it to a match.
pub(crate) struct Shortest {
    /// Each state's ways out (computed once: a completion visits them many times).
    edges: Vec<Box<[Edge]>>,
    start: StateID,
    /// Bytes from each state to a match; [`UNREACHABLE`] when there is none.
    distance: Vec<u32>,
    /// The last prefix completed and the states it led to: the guard asks again after each
    /// token, and the output only grows (or loses its last token), so most of it is not read
    /// again.
    cursor: RefCell<(Vec<u8>, Vec<StateID>)>,
    /// The closure's visited marks: a state is visited when its mark equals the second field,
    /// which each closure increments (so a closure costs what it visits, not the NFA's size).
    marks: RefCell<(Vec<u32>, u32)>,
}

/// An NFA state's way out.
#[derive(Clone, Copy)]
enum Edge {
    /// On one byte of `lo..=hi`.
    Byte(u8, u8, StateID),
    /// Without a byte.
    Empty(StateID),
    /// `^`: only at the start of the output.
    Start(StateID),
    /// `$`: only at its end.
    End(StateID),
}

impl Shortest {
    /// The NFA of `pattern` and its distances, or `None` when the NFA exceeds [`NFA_BYTES`] or
    /// the pattern uses look-around other than the text's ends (`\b`, `(?m)^`), which a byte
    /// alone cannot decide.
    pub(crate) fn new(pattern: &str) -> Option<Self> {
        let nfa = thompson::Compiler::new()
            .configure(
                thompson::Config::new()
                    .which_captures(WhichCaptures::None)
                    .nfa_size_limit(Some(NFA_BYTES)),
            )
            .build(pattern)
            .ok()?;
        let ends_only = LookSet::singleton(Look::Start).insert(Look::End);
        if !nfa.look_set_any().subtract(ends_only).is_empty() {
            return None;
        }
        let n = nfa.states().len();
        let edges: Vec<Box<[Edge]>> = (0..n)
            .map(|i| StateID::new(i).map(|id| edges_of(&nfa, id).into_boxed_slice()))
            .collect::<Result<_, _>>()
            .ok()?;
        // Reversed edges: `byte` marks the ones that consume a byte. `^` is left out: the
        // distances count from a position after the output's start, where it cannot pass.
        let mut into: Vec<Vec<(StateID, bool)>> = vec![Vec::new(); n];
        let mut end_into: Vec<Vec<StateID>> = vec![Vec::new(); n];
        for (i, out) in edges.iter().enumerate() {
            let from = StateID::new(i).ok()?;
            for &edge in out.iter() {
                match edge {
                    Edge::Byte(_, _, to) => into[to.as_usize()].push((from, true)),
                    Edge::Empty(to) => into[to.as_usize()].push((from, false)),
                    Edge::End(to) => end_into[to.as_usize()].push(from),
                    Edge::Start(_) => {}
                }
            }
        }
        // The states that reach a match without a byte, through empty edges and `$`.
        let mut ends = vec![false; n];
        let mut stack: Vec<StateID> = (0..n)
            .filter(|&i| matches!(nfa.states()[i], State::Match { .. }))
            .filter_map(|i| StateID::new(i).ok())
            .collect();
        for s in &stack {
            ends[s.as_usize()] = true;
        }
        while let Some(at) = stack.pop() {
            let empty = into[at.as_usize()].iter().filter(|e| !e.1).map(|e| e.0);
            for from in empty.chain(end_into[at.as_usize()].iter().copied()) {
                if !std::mem::replace(&mut ends[from.as_usize()], true) {
                    stack.push(from);
                }
            }
        }
        // Distances: a breadth-first search from those states over the reversed edges, an
        // empty edge costing nothing (pushed to the front) and a byte one.
        let mut distance = vec![UNREACHABLE; n];
        let mut queue: VecDeque<StateID> = VecDeque::new();
        for (i, &end) in ends.iter().enumerate() {
            if end {
                distance[i] = 0;
                queue.push_back(StateID::new(i).ok()?);
            }
        }
        while let Some(at) = queue.pop_front() {
            let d = distance[at.as_usize()];
            for &(from, byte) in &into[at.as_usize()] {
                let via = d + u32::from(byte);
                if via < distance[from.as_usize()] {
                    distance[from.as_usize()] = via;
                    if byte {
                        queue.push_back(from);
                    } else {
                        queue.push_front(from);
                    }
                }
            }
        }
        Some(Shortest {
            edges,
            start: nfa.start_anchored(),
            distance,
            cursor: RefCell::new((Vec::new(), Vec::new())),
            marks: RefCell::new((vec![0; n], 0)),
        })
    }

    /// The shortest bytes that make `prefix` followed by them a full match; among completions of
    /// that length, at each byte the one that comes first in `order` (which lists every byte).
    /// `None` when `prefix` cannot be completed.
    pub(crate) fn completion(&self, prefix: &[u8], order: &[u8]) -> Option<Vec<u8>> {
        // Continue from the last prefix read when this one extends it.
        let (mut states, from) = {
            let cursor = self.cursor.borrow();
            let (read, states) = &*cursor;
            if !states.is_empty() && prefix.starts_with(read) {
                (states.clone(), read.len())
            } else {
                (self.closure(vec![self.start], true), 0)
            }
        };
        for &byte in &prefix[from..] {
            states = self.closure(self.step(&states, byte, |_| true), false);
            if states.is_empty() {
                return None;
            }
        }
        *self.cursor.borrow_mut() = (prefix.to_vec(), states.clone());
        let mut left = states.iter().map(|s| self.distance[s.as_usize()]).min()?;
        if left == UNREACHABLE {
            return None;
        }
        let mut out = Vec::with_capacity(left as usize);
        while left > 0 {
            // The bytes that lead one step closer, and the first of them in `order`.
            let on_path = |to: StateID| self.distance[to.as_usize()] == left - 1;
            let mut allowed = [false; 256];
            for &s in &states {
                for &edge in self.edges[s.as_usize()].iter() {
                    if let Edge::Byte(lo, hi, to) = edge {
                        if on_path(to) {
                            allowed[usize::from(lo)..=usize::from(hi)].fill(true);
                        }
                    }
                }
            }
            let byte = order
                .iter()
                .copied()
                .chain(0..=255)
                .find(|&b| allowed[usize::from(b)])?;
            let next = self.step(&states, byte, on_path);
            states = self.closure(next, false);
            states.retain(|&s| on_path(s));
            out.push(byte);
            left -= 1;
        }
        Some(out)
    }

    /// The states `byte` leads to from `states`, kept when `keep` says so.
    fn step(&self, states: &[StateID], byte: u8, keep: impl Fn(StateID) -> bool) -> Vec<StateID> {
        let mut next = Vec::new();
        for &s in states {
            for &edge in self.edges[s.as_usize()].iter() {
                if let Edge::Byte(lo, hi, to) = edge {
                    if (lo..=hi).contains(&byte) && keep(to) {
                        next.push(to);
                    }
                }
            }
        }
        next
    }

    /// `states` and every state they reach without a byte (`^` at the output's start only),
    /// sorted and without repeats.
    fn closure(&self, states: Vec<StateID>, at_start: bool) -> Vec<StateID> {
        let mut marks = self.marks.borrow_mut();
        let (seen, mark) = &mut *marks;
        if *mark == u32::MAX {
            seen.fill(0);
            *mark = 0;
        }
        *mark += 1;
        let mut stack = states;
        let mut out = Vec::new();
        while let Some(at) = stack.pop() {
            if std::mem::replace(&mut seen[at.as_usize()], *mark) == *mark {
                continue;
            }
            out.push(at);
            for &edge in self.edges[at.as_usize()].iter() {
                // `$` is not crossed: no byte may follow it, and a state before it that may end
                // the output already has distance 0.
                match edge {
                    Edge::Empty(to) => stack.push(to),
                    Edge::Start(to) if at_start => stack.push(to),
                    _ => {}
                }
            }
        }
        out.sort_unstable();
        out
    }
}

/// The ways out of NFA state `id`.
fn edges_of(nfa: &NFA, id: StateID) -> Vec<Edge> {
    match nfa.state(id) {
        State::ByteRange { trans } => vec![Edge::Byte(trans.start, trans.end, trans.next)],
        State::Sparse(sparse) => sparse
            .transitions
            .iter()
            .map(|t| Edge::Byte(t.start, t.end, t.next))
            .collect(),
        State::Dense(dense) => {
            // Runs of bytes with the same target, as ranges; `StateID::ZERO` is "no edge".
            let mut out: Vec<Edge> = Vec::new();
            for (b, &to) in dense.transitions.iter().enumerate() {
                if to == StateID::ZERO {
                    continue;
                }
                let b = b as u8;
                match out.last_mut() {
                    Some(Edge::Byte(_, hi, last)) if *last == to && *hi + 1 == b => *hi = b,
                    _ => out.push(Edge::Byte(b, b, to)),
                }
            }
            out
        }
        State::Look { look, next } => match look {
            Look::Start => vec![Edge::Start(*next)],
            Look::End => vec![Edge::End(*next)],
            // Refused at construction.
            _ => Vec::new(),
        },
        State::Union { alternates } => alternates.iter().map(|&s| Edge::Empty(s)).collect(),
        State::BinaryUnion { alt1, alt2 } => vec![Edge::Empty(*alt1), Edge::Empty(*alt2)],
        State::Capture { next, .. } => vec![Edge::Empty(*next)],
        State::Fail | State::Match { .. } => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex_automata::hybrid::dfa::DFA;
    use regex_automata::{Anchored, Input, MatchKind};

    const EMAIL: &str = r"[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}";

    fn order() -> Vec<u8> {
        let first: Vec<u8> = (b'a'..=b'z').chain(b'0'..=b'9').collect();
        let rest = (0..=255u8).filter(|b| !first.contains(b));
        first.iter().copied().chain(rest).collect()
    }

    fn full_match(pattern: &str, text: &[u8]) -> bool {
        regex::bytes::Regex::new(&format!("^(?:{pattern})$"))
            .unwrap()
            .is_match(text)
    }

    #[test]
    fn completes_patterns_whose_classes_loop() {
        let s = Shortest::new(EMAIL).unwrap();
        let cases: &[(&str, &str)] = &[
            ("", "a@a.aa"),
            ("john", "@a.aa"),
            ("john@", "a.aa"),
            ("john@mail.", "aa"),
            ("john@mail.c", "a"),
            ("john@mail.com", ""),
        ];
        for (prefix, want) in cases {
            let got = s.completion(prefix.as_bytes(), &order()).unwrap();
            assert_eq!(String::from_utf8(got).unwrap(), *want, "after {prefix:?}");
        }
        assert_eq!(s.completion(b"@", &order()), None);
    }

    /// Patterns whose classes sit in nested repetitions (found by the property test of `make
    /// property`): their DFAs have more states than a search over them could afford; the NFA's
    /// distances complete them at once.
    #[test]
    fn classes_in_nested_repetitions_complete() {
        let patterns = [
            r"(.?([a-zA-Z0-9._%+-]{2,}\d{3}|[a-z0-9.-]{3}){3}ab{3}[a-z.]+|x+[0-9]{3}[a-z0-9.-]*(-{2,}[a-zA-Z0-9._%+-]?[0-9][A-Z]|-*\w+[A-Z]{1,3})){3}",
            r"(ab{2,}|\d*.{1,3}.{3}(-?\d*ab+[a-z0-9.-]+)?){3}[0-9]{2,}ab{2,}ab",
        ];
        for pattern in patterns {
            let s = Shortest::new(pattern).unwrap();
            for prefix in ["", "x1", "x123-", "x123-aA", "abb", "1é", "abbabb12"] {
                let Some(completion) = s.completion(prefix.as_bytes(), &order()) else {
                    continue;
                };
                let whole = [prefix.as_bytes(), &completion].concat();
                assert!(full_match(pattern, &whole), "{pattern}: {whole:?}");
            }
            assert!(s.completion(b"", &order()).is_some(), "{pattern}");
        }
        // A non-ASCII prefix, and a non-ASCII completion shorter than every ASCII one.
        let s = Shortest::new(r"\w{2}x").unwrap();
        assert_eq!(s.completion("é".as_bytes(), &order()).unwrap(), b"ax");
        let s = Shortest::new("はい|definitely not").unwrap();
        assert_eq!(s.completion(b"", &order()).unwrap(), "はい".as_bytes());
    }

    /// `^` passes only at the output's start and `$` only at its end; other look-around is left
    /// to the walk.
    #[test]
    fn the_texts_ends_are_honoured() {
        let s = Shortest::new("a$|abc").unwrap();
        assert_eq!(s.completion(b"", &order()).unwrap(), b"a");
        assert_eq!(s.completion(b"ab", &order()).unwrap(), b"c");
        let s = Shortest::new("(^x)?yz|^q").unwrap();
        assert_eq!(s.completion(b"", &order()).unwrap(), b"q");
        assert_eq!(s.completion(b"x", &order()).unwrap(), b"yz");
        assert_eq!(
            Shortest::new("(a$)+b").unwrap().completion(b"", &order()),
            None
        );
        // Nothing follows a `$` that was passed.
        for pattern in ["a$b*", "(a$)?b*"] {
            let s = Shortest::new(pattern).unwrap();
            assert_eq!(s.completion(b"ab", &order()), None, "{pattern}");
            assert_eq!(s.completion(b"a", &order()).unwrap(), b"", "{pattern}");
        }
        assert!(Shortest::new(r"\bword\b").is_none());
    }

    #[test]
    fn every_alternative_is_kept() {
        let s = Shortest::new("a|ab|abcd").unwrap();
        assert_eq!(s.completion(b"abc", &order()).unwrap(), b"d");
        assert_eq!(s.completion(b"a", &order()).unwrap(), b"");
    }

    /// Generated prefixes of generated patterns (random walks): each completion makes
    /// a full match, and no shorter byte string does (checked by enumerating the DFA's classes).
    #[test]
    fn completions_are_full_matches_and_shortest() {
        let atoms = [
            "[a-z]",
            "[0-9]",
            r"\.",
            "[a-z.]",
            "x",
            "(ab|c)",
            "[A-Z0-9._-]",
        ];
        let quants = ["", "+", "*", "?", "{2,}", "{1,3}"];
        let mut rng = fastrand::Rng::with_seed(20261207);
        let mut tried = 0;
        for _ in 0..300 {
            let pattern: String = (0..rng.usize(1..6))
                .map(|_| {
                    format!(
                        "{}{}",
                        atoms[rng.usize(..atoms.len())],
                        quants[rng.usize(..quants.len())]
                    )
                })
                .collect();
            let s = Shortest::new(&pattern).unwrap();
            let mut prefix = Vec::new();
            // A byte that leaves a completion possible (a DFA reports a match one byte late, so
            // a state that is not dead may still lead nowhere).
            let alphabet: Vec<u8> = b"abcxyzABZ0189.-_@%+ \xc3\xa9".to_vec();
            for _ in 0..rng.usize(0..12) {
                let live: Vec<u8> = alphabet
                    .iter()
                    .copied()
                    .filter(|&b| {
                        s.completion(&[prefix.as_slice(), &[b]].concat(), &order())
                            .is_some()
                    })
                    .collect();
                if live.is_empty() {
                    break;
                }
                prefix.push(live[rng.usize(..live.len())]);
            }
            let completion = s
                .completion(&prefix, &order())
                .unwrap_or_else(|| panic!("{pattern:?} after {prefix:?}: no completion"));
            let whole = [prefix.as_slice(), &completion].concat();
            assert!(full_match(&pattern, &whole), "{pattern:?}: {whole:?}");
            // Nothing shorter: on the pattern's DFA (built here, independently), expanding every
            // byte, no state within fewer bytes accepts.
            let dfa = DFA::builder()
                .configure(DFA::config().match_kind(MatchKind::All))
                .build(&pattern)
                .unwrap();
            let cache = &mut dfa.create_cache();
            let mut state = dfa
                .start_state_forward(cache, &Input::new(&[][..]).anchored(Anchored::Yes))
                .unwrap();
            for &b in &prefix {
                state = dfa.next_state(cache, state, b).unwrap();
            }
            let mut frontier = std::collections::HashSet::from([state]);
            for depth in 0..completion.len() {
                for &st in &frontier {
                    assert!(
                        !dfa.next_eoi_state(cache, st).unwrap().is_match(),
                        "{pattern:?} after {prefix:?}: a completion of {depth} bytes exists"
                    );
                }
                let mut next = std::collections::HashSet::new();
                for &st in &frontier {
                    for b in 0..=255u8 {
                        let to = dfa.next_state(cache, st, b).unwrap();
                        if !to.is_dead() && !to.is_quit() {
                            next.insert(to);
                        }
                    }
                }
                frontier = next;
            }
            tried += 1;
        }
        assert_eq!(tried, 300);
    }
}
