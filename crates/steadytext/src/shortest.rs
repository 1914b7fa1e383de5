//! The shortest completion of a regular expression's match, found on the pattern's lazy DFA.
//!
//! The budget guard (`generate.rs`) needs, after every token, a completion of the output that
//! still fits what is left of `max_tokens`. llguidance's matcher answers "may this byte come
//! next" but has no notion of state identity, so a walk over it cannot tell a loop from progress:
//! in `[a-z0-9.]+@[a-z]+\.[a-z]{2,}` every letter keeps it in the first loop, and a walk that
//! prefers letters never reaches `@`. For a regex (and a list of choices, which is compiled to
//! one) the pattern's lazy DFA is used instead, and a breadth-first search over its states from
//! where the output stands finds the shortest completion: exact, whatever the pattern's loops.
//! When the search would need too much memory the caller falls back to the walk.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};

use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::hybrid::LazyStateID;
use regex_automata::nfa::thompson;
use regex_automata::util::syntax;
use regex_automata::{Anchored, Input, MatchKind};

/// The most memory the pattern's NFA and the lazy DFA's cache of states may take: a search that
/// would need more gives up (and the walk is used).
const NFA_BYTES: usize = 16 << 20;
const CACHE_BYTES: usize = 16 << 20;
/// The most states one search visits (it runs after a token when the known completion no longer
/// fits): a pattern whose shortest completion lies beyond them is left to the walk.
const MAX_STATES: usize = 20_000;

/// A pattern's lazy DFA (states are built as the search reaches them, so a pattern whose full
/// DFA would be huge, `\w` in nested repetitions, costs only what is explored), reporting every
/// match: a full match is a match that ends where the output does, and leftmost-first semantics
/// would drop the longer alternatives of `a|ab` once `a` matched.
pub(crate) struct Shortest {
    dfa: DFA,
    cache: RefCell<Cache>,
    /// The same pattern with ASCII classes (`\w`, `\d`, `.` over single bytes), searched over
    /// ASCII bytes. A Unicode class in nested repetitions makes every DFA state large and the
    /// full search outgrow its cache (generated patterns such as
    /// `(x+[0-9]{3}(-*\w+[A-Z]{1,3})){3}` did). An ASCII string this form accepts the full
    /// pattern accepts too (it accepts fewer only through Unicode case folding, `(?i)ſ`), so a
    /// completion found here completes the output under the full pattern; the guide checks it
    /// on llguidance's matcher anyway.
    ascii: Option<(DFA, RefCell<Cache>)>,
}

impl Shortest {
    /// The lazy DFA of `pattern`, or `None` when its NFA exceeds [`NFA_BYTES`] or it uses what a
    /// DFA cannot (look-around other than the text's ends).
    pub(crate) fn new(pattern: &str) -> Option<Self> {
        let dfa = lazy_dfa(pattern, true)?;
        let cache = RefCell::new(dfa.create_cache());
        // Not every pattern has an ASCII form (`\p{Greek}`): then only the full one is searched.
        let ascii = lazy_dfa(pattern, false).map(|dfa| {
            let cache = RefCell::new(dfa.create_cache());
            (dfa, cache)
        });
        Some(Shortest { dfa, cache, ascii })
    }

    /// The shortest bytes that make `prefix` followed by them a full match; among completions of
    /// that length, the one whose bytes come first in `order` (which lists every byte). For an
    /// ASCII prefix the ASCII form's completion counts too (see [`Shortest::ascii`]): the
    /// shorter of the two, so the result is the shortest whenever the full search finishes.
    /// `None` when `prefix` cannot be completed, or both searches outgrew their caches.
    pub(crate) fn completion(&self, prefix: &[u8], order: &[u8]) -> Option<Vec<u8>> {
        let ascii = self
            .ascii
            .as_ref()
            .filter(|_| prefix.is_ascii())
            .and_then(|(dfa, cache)| {
                let order: Vec<u8> = order.iter().copied().filter(u8::is_ascii).collect();
                search(dfa, &mut cache.borrow_mut(), prefix, &order)
            });
        let full = search(&self.dfa, &mut self.cache.borrow_mut(), prefix, order);
        match (ascii, full) {
            (Some(a), Some(f)) if f.len() < a.len() => Some(f),
            (Some(a), _) => Some(a),
            (None, f) => f,
        }
    }
}

/// A lazy DFA of `pattern` reporting every match, with Unicode classes or ASCII ones.
fn lazy_dfa(pattern: &str, unicode: bool) -> Option<DFA> {
    DFA::builder()
        .configure(
            DFA::config()
                .match_kind(MatchKind::All)
                .cache_capacity(CACHE_BYTES),
        )
        .syntax(syntax::Config::new().unicode(unicode).utf8(unicode))
        .thompson(
            thompson::Config::new()
                .utf8(unicode)
                .nfa_size_limit(Some(NFA_BYTES)),
        )
        .build(pattern)
        .ok()
}

/// Breadth-first search on `dfa` from the state `prefix` leads to, trying bytes in `order`.
fn search(dfa: &DFA, cache: &mut Cache, prefix: &[u8], order: &[u8]) -> Option<Vec<u8>> {
    let mut state = dfa
        .start_state_forward(cache, &Input::new(&[][..]).anchored(Anchored::Yes))
        .ok()?;
    for &byte in prefix {
        // The id a transition returns is valid even when the cache was cleared to make it.
        state = dfa.next_state(cache, state, byte).ok()?;
        if stuck(state) {
            return None;
        }
    }
    // From here the search holds many ids, which a cleared cache (full: the pattern's
    // states outgrew CACHE_BYTES) would invalidate: it gives up then.
    let clears = cache.clear_count();
    // Breadth-first: the first state reached that accepts is at the shortest distance, and
    // states are visited in `order` of their bytes, so the path to it is the preferred one.
    // Bytes of one class lead to the same state: one of each is tried.
    let classes = *dfa.byte_classes();
    let mut came_from: HashMap<LazyStateID, (LazyStateID, u8)> = HashMap::new();
    let mut queue = VecDeque::from([state]);
    let root = state;
    while let Some(at) = queue.pop_front() {
        let accepts = dfa.next_eoi_state(cache, at).ok()?.is_match();
        if cache.clear_count() != clears {
            return None;
        }
        if accepts {
            let mut path = Vec::new();
            let mut here = at;
            while here != root {
                let (from, byte) = came_from[&here];
                path.push(byte);
                here = from;
            }
            path.reverse();
            return Some(path);
        }
        let mut tried = [false; 256];
        for &byte in order {
            if std::mem::replace(&mut tried[usize::from(classes.get(byte))], true) {
                continue;
            }
            let next = dfa.next_state(cache, at, byte).ok()?;
            if cache.clear_count() != clears {
                return None;
            }
            if stuck(next) || next == root || came_from.contains_key(&next) {
                continue;
            }
            if came_from.len() >= MAX_STATES {
                return None;
            }
            came_from.insert(next, (at, byte));
            queue.push_back(next);
        }
    }
    None
}

/// A state nothing can follow.
fn stuck(state: LazyStateID) -> bool {
    state.is_dead() || state.is_quit()
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// A pattern whose Unicode classes sit in nested repetitions (found by the property test
    /// of `make property`): the full DFA's search outgrows its cache; the ASCII one completes it.
    #[test]
    fn unicode_classes_in_nested_repetitions_complete() {
        let pattern = r"(.?([a-zA-Z0-9._%+-]{2,}\d{3}|[a-z0-9.-]{3}){3}ab{3}[a-z.]+|x+[0-9]{3}[a-z0-9.-]*(-{2,}[a-zA-Z0-9._%+-]?[0-9][A-Z]|-*\w+[A-Z]{1,3})){3}";
        let s = Shortest::new(pattern).unwrap();
        for prefix in ["", "x1", "x123-", "x123-aA"] {
            let completion = s
                .completion(prefix.as_bytes(), &order())
                .unwrap_or_else(|| panic!("no completion after {prefix:?}"));
            let whole = [prefix.as_bytes(), &completion].concat();
            assert!(full_match(pattern, &whole), "{whole:?}");
        }
        // A non-ASCII prefix is searched on the full pattern.
        let s = Shortest::new(r"\w{2}x").unwrap();
        assert_eq!(s.completion("é".as_bytes(), &order()).unwrap(), b"ax");
        // A non-ASCII completion shorter than every ASCII one is still the one found.
        let s = Shortest::new("はい|definitely not").unwrap();
        assert_eq!(s.completion(b"", &order()).unwrap(), "はい".as_bytes());
    }

    #[test]
    fn every_alternative_is_kept() {
        let s = Shortest::new("a|ab|abcd").unwrap();
        assert_eq!(s.completion(b"abc", &order()).unwrap(), b"d");
        assert_eq!(s.completion(b"a", &order()).unwrap(), b"");
    }

    /// Generated prefixes of generated patterns (random walks on the DFA): each completion makes
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
            // Nothing shorter: expanding every byte (no classes, no order), no state within
            // fewer bytes accepts.
            let cache = &mut *s.cache.borrow_mut();
            let mut state = s
                .dfa
                .start_state_forward(cache, &Input::new(&[][..]).anchored(Anchored::Yes))
                .unwrap();
            for &b in &prefix {
                state = s.dfa.next_state(cache, state, b).unwrap();
            }
            let mut frontier = std::collections::HashSet::from([state]);
            for depth in 0..completion.len() {
                for &st in &frontier {
                    assert!(
                        !s.dfa.next_eoi_state(cache, st).unwrap().is_match(),
                        "{pattern:?} after {prefix:?}: a completion of {depth} bytes exists"
                    );
                }
                let mut next = std::collections::HashSet::new();
                for &st in &frontier {
                    for b in 0..=255u8 {
                        let to = s.dfa.next_state(cache, st, b).unwrap();
                        if !stuck(to) {
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
