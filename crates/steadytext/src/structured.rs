//! Constraints on generated text: a JSON schema, a regular expression, a list of choices or a
//! Lark grammar, enforced token by token with llguidance.
//!
//! A constraint is compiled before anything is decoded, so bad input is an error (one that names
//! what is unsupported) and never reaches the decoder. llguidance refuses JSON Schema keywords it
//! cannot enforce instead of ignoring them; every compilation runs with bounded grammar size and
//! lexer fuel, and a panic inside llguidance is caught and reported as an error.
//!
//! A [`Guide`] follows one generation. Besides the model-vocabulary matcher it keeps a
//! byte-level matcher of the same grammar, from which it computes a short completion of the
//! output at any point: when the budget gets tight, that completion is emitted instead of the
//! model's choice, so structured output is always complete within `max_tokens` when it can be.

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::OnceLock;

use llguidance::api::{ParserLimits, TopLevelGrammar};
use llguidance::toktrie::{ApproximateTokEnv, SimpleVob, TokEnv, TokenId};
use llguidance::{Matcher, ParserFactory};
use serde_json::Value;

use crate::error::{Error, ErrorKind, Result};
use crate::json_schema;
use crate::shortest::Shortest;

/// What the output must be.
#[derive(Debug, Clone, PartialEq)]
pub enum Constraint {
    /// JSON that validates against this JSON schema.
    Json(Value),
    /// Text that the regular expression matches in full.
    Regex(String),
    /// Exactly one of these strings.
    Choice(Vec<String>),
    /// Text in the language of this Lark grammar (llguidance's dialect).
    Grammar(String),
}

/// The constraint engine and its version: part of the build fingerprint and of cache keys.
pub const ENGINE: &str = "llguidance/1.9.1";

/// Largest schema (as JSON text), regex or grammar accepted, in bytes.
pub const MAX_CONSTRAINT_BYTES: usize = 64 * 1024;
/// Largest count in a regex repetition (`a{1000}`), in a regex or a schema's `pattern`.
pub const MAX_REPEAT: u32 = 1000;
/// Most choices accepted.
pub const MAX_CHOICES: usize = 1000;

impl Constraint {
    /// The kind and parameter, for cache keys (`json:{schema}` with sorted keys, etc.).
    pub fn key(&self) -> String {
        match self {
            Constraint::Json(schema) => format!("json:{}", canonical_json(schema)),
            Constraint::Regex(pattern) => format!("regex:{pattern}"),
            Constraint::Choice(choices) => format!(
                "choice:{}",
                serde_json::to_string(choices).unwrap_or_default()
            ),
            Constraint::Grammar(grammar) => format!("lark:{grammar}"),
        }
    }

    /// Checks the constraint without a model: its bounds, and that it compiles (against a
    /// byte-level vocabulary). An error here is what generation would give.
    pub fn check(&self) -> Result<()> {
        compile_with(self, byte_compiler()).map(drop)
    }

    fn describe(&self) -> &'static str {
        match self {
            Constraint::Json(_) => "Invalid JSON schema",
            Constraint::Regex(_) => "Invalid regex pattern",
            Constraint::Choice(_) => "Invalid choices",
            Constraint::Grammar(_) => "Invalid grammar",
        }
    }

    fn grammar(&self) -> Result<TopLevelGrammar> {
        let too_big = |bytes: usize| {
            Error::new(
                ErrorKind::LimitExceeded,
                format!(
                    "{}: it is {bytes} bytes, more than the limit of {MAX_CONSTRAINT_BYTES}",
                    self.describe()
                ),
            )
        };
        match self {
            Constraint::Json(schema) => {
                if !(schema.is_object() || schema.is_boolean()) {
                    return Err(Error::invalid(format!(
                        "Invalid JSON schema: a schema is an object or a boolean, got {schema}"
                    )));
                }
                let text_len = schema.to_string().len();
                if text_len > MAX_CONSTRAINT_BYTES {
                    return Err(too_big(text_len));
                }
                check_patterns(schema)?;
                Ok(TopLevelGrammar::from_json_schema(json_schema::prepare(
                    schema,
                )))
            }
            Constraint::Regex(pattern) => {
                if pattern.is_empty() {
                    return Err(Error::invalid("Pattern cannot be null or empty"));
                }
                if pattern.len() > MAX_CONSTRAINT_BYTES {
                    return Err(too_big(pattern.len()));
                }
                check_regex(pattern).map_err(|e| {
                    Error::new(e.kind(), format!("Invalid regex pattern: {}", e.message()))
                })?;
                Ok(TopLevelGrammar::from_regex(pattern))
            }
            Constraint::Choice(choices) => Ok(TopLevelGrammar::from_regex(&choice_regex(choices)?)),
            Constraint::Grammar(grammar) => {
                if grammar.trim().is_empty() {
                    return Err(Error::invalid("Grammar cannot be null or empty"));
                }
                if grammar.len() > MAX_CONSTRAINT_BYTES {
                    return Err(too_big(grammar.len()));
                }
                Ok(TopLevelGrammar::from_lark(grammar.clone()))
            }
        }
    }
}

/// Refuses repetition counts above [`MAX_REPEAT`] (the engine would accept `a{1000000}` and pay
/// for it at every token), and names word boundaries, which the engine reports only as an
/// internal look-around.
fn check_regex(pattern: &str) -> Result<()> {
    use regex_syntax::ast::{AssertionKind, Ast, RepetitionKind, RepetitionRange};
    // Patterns regex-syntax cannot parse are left to the engine, which names the problem.
    let Ok(ast) = regex_syntax::ast::parse::Parser::new().parse(pattern) else {
        return Ok(());
    };
    fn walk(ast: &Ast) -> Result<()> {
        match ast {
            Ast::Repetition(r) => {
                if let RepetitionKind::Range(range) = &r.op.kind {
                    let (RepetitionRange::Exactly(n)
                    | RepetitionRange::AtLeast(n)
                    | RepetitionRange::Bounded(_, n)) = range;
                    if *n > MAX_REPEAT {
                        return Err(Error::new(
                            ErrorKind::LimitExceeded,
                            format!("repetition count {n} is more than the limit of {MAX_REPEAT}"),
                        ));
                    }
                }
                walk(&r.ast)
            }
            Ast::Assertion(a)
                if !matches!(
                    a.kind,
                    AssertionKind::StartLine
                        | AssertionKind::EndLine
                        | AssertionKind::StartText
                        | AssertionKind::EndText
                ) =>
            {
                Err(Error::invalid(
                    "word boundaries (\\b, \\B, \\<, \\>) are not supported",
                ))
            }
            Ast::Group(g) => walk(&g.ast),
            Ast::Concat(c) => c.asts.iter().try_for_each(walk),
            Ast::Alternation(a) => a.asts.iter().try_for_each(walk),
            _ => Ok(()),
        }
    }
    walk(&ast)
}

/// Applies [`check_regex`] to every `pattern` of a schema.
fn check_patterns(schema: &Value) -> Result<()> {
    match schema {
        Value::Object(map) => {
            if let Some(Value::String(pattern)) = map.get("pattern") {
                check_regex(pattern).map_err(|e| {
                    Error::new(
                        e.kind(),
                        format!("Invalid JSON schema: pattern {pattern:?}: {}", e.message()),
                    )
                })?;
            }
            map.values().try_for_each(check_patterns)
        }
        Value::Array(items) => items.iter().try_for_each(check_patterns),
        _ => Ok(()),
    }
}

fn choice_regex(choices: &[String]) -> Result<String> {
    if choices.len() < 2 {
        return Err(Error::invalid("Must provide at least 2 choices"));
    }
    if choices.len() > MAX_CHOICES {
        return Err(Error::new(
            ErrorKind::LimitExceeded,
            format!(
                "Invalid choices: {} choices, more than the limit of {MAX_CHOICES}",
                choices.len()
            ),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    for choice in choices {
        if choice.is_empty() {
            return Err(Error::invalid("Choices cannot contain empty strings"));
        }
        if choice.contains('\0') {
            return Err(Error::invalid("NUL characters cannot be generated"));
        }
        if !seen.insert(choice) {
            return Err(Error::invalid(format!("Duplicate choice: {choice}")));
        }
        total += choice.len();
    }
    if total > MAX_CONSTRAINT_BYTES {
        return Err(Error::new(
            ErrorKind::LimitExceeded,
            format!(
                "Invalid choices: {total} bytes, more than the limit of {MAX_CONSTRAINT_BYTES}"
            ),
        ));
    }
    let alternatives: Vec<String> = choices.iter().map(|c| regex_syntax::escape(c)).collect();
    Ok(format!("(?:{})", alternatives.join("|")))
}

/// JSON with object keys sorted, so equal schemas give equal keys.
fn canonical_json(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<_> = map.keys().collect();
            keys.sort();
            let items: Vec<String> = keys
                .iter()
                .map(|k| format!("{}:{}", Value::from(k.as_str()), canonical_json(&map[*k])))
                .collect();
            format!("{{{}}}", items.join(","))
        }
        Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(canonical_json)
                .collect::<Vec<_>>()
                .join(",")
        ),
        other => other.to_string(),
    }
}

/// Bounds on compiling and on each token step, so a hostile grammar costs bounded time and memory.
fn limits() -> ParserLimits {
    ParserLimits {
        max_grammar_size: 200_000,
        initial_lexer_fuel: 2_000_000,
        step_lexer_fuel: 400_000,
        max_lexer_states: 100_000,
        ..ParserLimits::default()
    }
}

/// A compiler for one vocabulary (a model's, or bytes).
pub(crate) struct Compiler {
    factory: ParserFactory,
}

impl Compiler {
    /// A compiler for `env`; building one walks the vocabulary, so each model keeps its own.
    pub(crate) fn new(env: &TokEnv) -> Result<Self> {
        let mut factory = ParserFactory::new_simple(env)
            .map_err(|e| Error::inference(format!("cannot set up constrained decoding: {e}")))?;
        factory.quiet();
        *factory.limits_mut() = limits();
        Ok(Compiler { factory })
    }
}

/// The byte-level vocabulary (token n is byte n): used to check constraints without a model and
/// to compute completions.
fn byte_env() -> TokEnv {
    static ENV: OnceLock<TokEnv> = OnceLock::new();
    ENV.get_or_init(ApproximateTokEnv::single_byte_env).clone()
}

fn byte_compiler() -> &'static Compiler {
    static COMPILER: OnceLock<Compiler> = OnceLock::new();
    COMPILER.get_or_init(|| Compiler::new(&byte_env()).expect("the byte vocabulary compiles"))
}

/// Compiles `constraint` with `compiler`'s vocabulary.
fn compile_with(constraint: &Constraint, compiler: &Compiler) -> Result<Matcher> {
    let grammar = constraint.grammar()?;
    let parser =
        std::panic::catch_unwind(AssertUnwindSafe(|| compiler.factory.create_parser(grammar)))
            .map_err(|_| {
                Error::invalid(format!(
                    "{}: the constraint engine failed on it",
                    constraint.describe()
                ))
            })?
            .map_err(|e| {
                Error::invalid(format!("{}: {}", constraint.describe(), first_line(&e)))
            })?;
    let matcher = Matcher::new(Ok(parser));
    if let Some(e) = matcher.get_error() {
        return Err(Error::invalid(format!(
            "{}: {}",
            constraint.describe(),
            first_line(&e)
        )));
    }
    Ok(matcher)
}

/// The engine's message on one line, without its position prefix, bounded in length.
fn first_line(e: &dyn std::fmt::Display) -> String {
    let text = e.to_string();
    let joined = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('^'))
        .collect::<Vec<_>>()
        .join(" ");
    let joined = match joined.split_once("): ") {
        Some((head, rest)) if head.starts_with("at ") => rest.to_string(),
        _ => joined,
    };
    name_keyword(&joined).chars().take(400).collect()
}

/// The engine's messages with the schema keyword they are about, as the user wrote it.
fn name_keyword(message: &str) -> String {
    if message.contains("is not present in a registry") {
        return format!("$ref: only references inside the schema are followed ({message})");
    }
    if message.contains("patternProperty regexes") {
        return format!("patternProperties: {message}");
    }
    if message.starts_with("oneOf constraints are not supported") {
        return "oneOf is not supported: its alternatives would have to exclude each other \
                (use anyOf when a value may match several)"
            .into();
    }
    message.to_string()
}

/// The per-model part: the vocabulary as llguidance sees it, and a compiler over it.
pub(crate) struct Vocabulary {
    env: TokEnv,
    compiler: Compiler,
    /// The bytes each token stands for (special tokens have none).
    bytes: Vec<Vec<u8>>,
}

impl Vocabulary {
    pub(crate) fn new(env: TokEnv) -> Result<Self> {
        let trie = env.tok_trie();
        let bytes = (0..trie.vocab_size() as TokenId)
            .map(|t| {
                let b = trie.token(t);
                if b.first() == Some(&0xFF) {
                    Vec::new()
                } else {
                    b.to_vec()
                }
            })
            .collect();
        Ok(Vocabulary {
            compiler: Compiler::new(&env)?,
            env,
            bytes,
        })
    }

    /// A guide for `constraint` over this vocabulary.
    pub(crate) fn guide(&self, constraint: &Constraint) -> Result<Guide<'_>> {
        let tokens = compile_with(constraint, &self.compiler)?;
        let bytes = compile_with(constraint, byte_compiler())?;
        let shortest = match constraint {
            Constraint::Regex(pattern) => Shortest::new(pattern),
            Constraint::Choice(choices) => choice_regex(choices)
                .ok()
                .and_then(|pattern| Shortest::new(&pattern)),
            Constraint::Json(_) | Constraint::Grammar(_) => None,
        };
        Ok(Guide {
            vocab: self,
            rolls_back: rolls_back(&bytes),
            tokens,
            bytes,
            shortest,
            output: Vec::new(),
        })
    }
}

/// One constrained generation's state: which tokens may come next, and how the output can be
/// finished from here.
pub(crate) struct Guide<'v> {
    vocab: &'v Vocabulary,
    tokens: Matcher,
    bytes: Matcher,
    /// Whether the grammar supports rollback (llguidance refuses it for grammars with `stop=` or
    /// `max_tokens=` lexemes); the budget guard needs it.
    rolls_back: bool,
    /// For a regex or choices: the pattern's NFA, which gives the shortest completion.
    shortest: Option<Shortest>,
    /// The bytes consumed so far (where the DFA's search starts).
    output: Vec<u8>,
}

/// Whether `matcher`'s grammar can undo a consumed byte, tried on a copy: a failed rollback
/// leaves a matcher in an error state for good.
fn rolls_back(matcher: &Matcher) -> bool {
    let mut probe = matcher.deep_clone();
    let Ok(mask) = probe.compute_mask() else {
        return false;
    };
    match (0..=255u32).find(|&b| mask.is_allowed(b)) {
        Some(byte) => probe.consume_token(byte).is_ok() && probe.rollback(1).is_ok(),
        None => true,
    }
}

impl Guide<'_> {
    fn engine_error(&self, matcher: &Matcher) -> Error {
        Error::inference(format!(
            "constrained decoding failed: {}",
            matcher
                .get_error()
                .unwrap_or_else(|| "unknown error".into())
        ))
    }

    /// Whether `token` may come next (`end` when it is an end-of-generation token).
    pub(crate) fn allows(&mut self, token: TokenId, end: bool) -> Result<bool> {
        if end {
            return self.accepting();
        }
        self.tokens
            .validate_tokens(&[token])
            .map(|n| n == 1)
            .map_err(|_| self.engine_error(&self.tokens))
    }

    /// The tokens allowed next (end-of-generation tokens when the output may end here).
    pub(crate) fn mask(&mut self) -> Result<SimpleVob> {
        self.tokens
            .compute_mask()
            .map_err(|_| self.engine_error(&self.tokens))
    }

    /// Whether the output may end here.
    pub(crate) fn accepting(&mut self) -> Result<bool> {
        self.tokens
            .is_accepting()
            .map_err(|_| self.engine_error(&self.tokens))
    }

    /// Whether consumed tokens can be undone, which [`Guide::verifies`], [`Guide::completion`]
    /// and [`Guide::rollback_one`] need.
    pub(crate) fn rolls_back(&self) -> bool {
        self.rolls_back
    }

    /// Whether the grammar admits nothing more.
    pub(crate) fn finished(&self) -> bool {
        self.tokens.is_stopped()
    }

    /// Records that `token` was emitted.
    pub(crate) fn consume(&mut self, token: TokenId) -> Result<()> {
        self.tokens
            .consume_token(token)
            .map_err(|_| self.engine_error(&self.tokens))?;
        let text = &self.vocab.bytes[token as usize];
        let bytes: Vec<TokenId> = text.iter().map(|&b| TokenId::from(b)).collect();
        self.output.extend_from_slice(text);
        self.bytes
            .consume_tokens(&bytes)
            .map_err(|_| self.engine_error(&self.bytes))
    }

    /// Undoes `token`, the last one consumed.
    pub(crate) fn rollback_one(&mut self, token: TokenId) -> Result<()> {
        let bytes = self.vocab.bytes[token as usize].len();
        self.tokens
            .rollback(1)
            .map_err(|_| self.engine_error(&self.tokens))?;
        self.output
            .truncate(self.output.len().saturating_sub(bytes));
        self.bytes
            .rollback(bytes)
            .map_err(|_| self.engine_error(&self.bytes))
    }

    /// Whether `bytes` finish the output from here. Checked on the byte matcher itself and
    /// rolled back: this runs after every constrained token, and a deep clone copies the
    /// lexer's caches, which costs more than the rest of the step.
    pub(crate) fn verifies(&mut self, bytes: &[u8]) -> bool {
        if bytes.is_empty() {
            return self.bytes.is_accepting().unwrap_or(false);
        }
        let bytes: Vec<TokenId> = bytes.iter().map(|&b| TokenId::from(b)).collect();
        // Validating first keeps a rejected byte from putting the matcher in its error state.
        if self.bytes.validate_tokens(&bytes).ok() != Some(bytes.len())
            || self.bytes.consume_tokens(&bytes).is_err()
        {
            return false;
        }
        let accepting = self.bytes.is_accepting().unwrap_or(false);
        let restored = self.bytes.rollback(bytes.len()).is_ok();
        accepting && restored
    }

    /// `bytes` as this vocabulary's tokens (greedy longest match).
    pub(crate) fn tokenize(&self, bytes: &[u8]) -> Vec<TokenId> {
        self.vocab.env.tok_trie().greedy_tokenize(bytes)
    }

    /// A short byte string that completes the output from here, or `None` when none is found.
    /// For a regex or choices, the shortest (from the pattern's NFA, checked on the byte
    /// matcher); otherwise a walk of at most [`MAX_COMPLETION`] bytes on the byte matcher
    /// itself, rolled back as in [`Guide::verifies`].
    pub(crate) fn completion(&mut self) -> Option<Vec<u8>> {
        let shortest = self
            .shortest
            .as_ref()
            .and_then(|s| s.completion(&self.output, preference()));
        if let Some(bytes) = shortest {
            if self.verifies(&bytes) {
                return Some(bytes);
            }
        }
        complete(&mut self.bytes)
    }
}

/// The longest completion searched for.
pub const MAX_COMPLETION: usize = 512;

/// Bytes tried first when completing: the ones that close strings, objects and arrays, then the
/// shortest values, then separators, then letters and the rest.
fn preference() -> &'static [u8] {
    static ORDER: OnceLock<Vec<u8>> = OnceLock::new();
    ORDER.get_or_init(|| {
        let mut order: Vec<u8> = b"\"}]0,:1[{".to_vec();
        order.extend(b'a'..=b'z');
        order.extend(b'A'..=b'Z');
        order.extend(b'2'..=b'9');
        order.extend(b"-._ ");
        for b in 0..=255u8 {
            if !order.contains(&b) {
                order.push(b);
            }
        }
        order
    })
}

/// Walks the byte matcher to an accepting state: at each step a byte that accepts at once if
/// there is one, else the most preferred allowed byte, taking a letter or digit other than the
/// one just written when there is one (which breaks cycles such as `a+b+c`). A pattern this walk
/// does not finish (say a search for `\d{3}-\d{4}` inside a free string) gives `None`. The walk
/// is rolled back, so `matcher` ends where it started (a deep clone per step, or per probe,
/// copies the lexer's caches and cost more than decoding the token).
///
/// When that walk does not finish, a second one explores: see [`explore`].
fn complete(matcher: &mut Matcher) -> Option<Vec<u8>> {
    attempt(matcher, walk).or_else(|| attempt(matcher, explore))
}

/// Runs one walk and rolls it back.
fn attempt(matcher: &mut Matcher, walk: fn(&mut Matcher, &mut Vec<u8>) -> bool) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let finished = walk(matcher, &mut out);
    let restored = matcher.rollback(out.len()).is_ok();
    (finished && restored).then_some(out)
}

/// The most bytes [`explore`] probes at one step for one that leads somewhere new.
const PROBES: usize = 16;

/// A walk for what [`walk`] loops in: a class that also holds the byte that must follow, inside
/// a JSON string's `pattern` or a grammar's lexeme (`[a-z0-9.]+@` in a string: every letter
/// keeps the walk in the loop, and `@` comes late in the preference order). The matcher has no
/// notion of state identity, so the set of allowed bytes stands for one: at each step a byte that
/// accepts at once if there is one, else the first byte (fewest uses in this walk first, then the
/// preference order) after which the allowed set is one not seen yet, else the first byte. A
/// loop's exit changes the allowed set (after `@` the class of the domain's bytes is allowed),
/// so it is taken once it is probed, and using the fewest-used bytes first probes every byte of
/// a loop in turn.
fn explore(matcher: &mut Matcher, out: &mut Vec<u8>) -> bool {
    let mut seen: HashSet<SimpleVob> = HashSet::new();
    let mut uses = [0usize; 256];
    drive(matcher, out, |matcher, mask, mut allowed, _| {
        seen.insert(mask.clone());
        // Stable: equal uses keep the preference order.
        allowed.sort_by_key(|&b| uses[usize::from(b)]);
        // The same bytes are probed for both: a byte that ends the grammar must be found by
        // `accepts_after`, since `mask_after` skips it.
        let closing = allowed
            .iter()
            .copied()
            .take(PROBES)
            .find(|&b| accepts_after(matcher, b));
        let novel = || {
            allowed
                .iter()
                .copied()
                .take(PROBES)
                .find(|&b| mask_after(matcher, b).is_some_and(|m| !seen.contains(&m)))
        };
        let next = closing
            .or_else(novel)
            .or_else(|| allowed.first().copied())?;
        uses[usize::from(next)] += 1;
        Some(next)
    })
}

/// The bytes allowed after `byte` (an allowed one); leaves `matcher` as it was. `None` after a
/// byte that ends the grammar: asking a stopped matcher for its mask is an error, and an error
/// puts a matcher in its error state for good (rollback included).
fn mask_after(matcher: &mut Matcher, byte: u8) -> Option<SimpleVob> {
    matcher.consume_token(TokenId::from(byte)).ok()?;
    let mask = if matcher.is_stopped() {
        None
    } else {
        matcher.compute_mask().ok()
    };
    matcher.rollback(1).ok()?;
    mask
}

fn walk(matcher: &mut Matcher, out: &mut Vec<u8>) -> bool {
    drive(matcher, out, |matcher, _, allowed, out| {
        // The closing bytes come first in the preference order, so probing the first few
        // suffices.
        let closing = allowed
            .iter()
            .copied()
            .take(12)
            .find(|&b| accepts_after(matcher, b));
        let previous = out.last().copied().filter(u8::is_ascii_alphanumeric);
        closing
            .or_else(|| allowed.iter().copied().find(|&b| Some(b) != previous))
            .or_else(|| allowed.first().copied())
    })
}

/// The loop both walks share: until `matcher` accepts (true), or the output reaches
/// [`MAX_COMPLETION`] bytes, the grammar stops or nothing is chosen (false), consumes the byte
/// `choose` picks from the mask, the allowed bytes in the preference order and the output so
/// far.
fn drive(
    matcher: &mut Matcher,
    out: &mut Vec<u8>,
    mut choose: impl FnMut(&mut Matcher, &SimpleVob, Vec<u8>, &[u8]) -> Option<u8>,
) -> bool {
    loop {
        if matcher.is_accepting().unwrap_or(false) {
            return true;
        }
        if out.len() >= MAX_COMPLETION || matcher.is_stopped() {
            return false;
        }
        let Ok(mask) = matcher.compute_mask() else {
            return false;
        };
        let allowed: Vec<u8> = preference()
            .iter()
            .copied()
            .filter(|&b| mask.is_allowed(TokenId::from(b)))
            .collect();
        let Some(next) = choose(matcher, &mask, allowed, out) else {
            return false;
        };
        if matcher.consume_token(TokenId::from(next)).is_err() {
            return false;
        }
        out.push(next);
    }
}

/// Whether the output may end right after `byte` (an allowed one); leaves `matcher` as it was.
fn accepts_after(matcher: &mut Matcher, byte: u8) -> bool {
    if matcher.consume_token(TokenId::from(byte)).is_err() {
        return false;
    }
    let accepting = matcher.is_accepting().unwrap_or(false);
    matcher.rollback(1).is_ok() && accepting
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn completion_of(constraint: &Constraint, prefix: &[u8]) -> Option<String> {
        let mut m = compile_with(constraint, byte_compiler()).unwrap();
        let prefix: Vec<TokenId> = prefix.iter().map(|&b| TokenId::from(b)).collect();
        m.consume_tokens(&prefix).unwrap();
        let before = m.compute_mask().unwrap();
        let done = complete(&mut m).map(|b| String::from_utf8(b).unwrap());
        // The search leaves the matcher where it was: same mask, state and completion again.
        let (accepting, stopped) = (m.is_accepting().unwrap(), m.is_stopped());
        assert_eq!(m.compute_mask().unwrap(), before);
        assert_eq!(
            (m.is_accepting().unwrap(), m.is_stopped()),
            (accepting, stopped)
        );
        assert_eq!(
            complete(&mut m).map(|b| String::from_utf8(b).unwrap()),
            done
        );
        done
    }

    #[test]
    fn completions_close_what_is_open() {
        let person = Constraint::Json(json!({
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "age": {"type": "integer"}
            },
            "required": ["name", "tags", "age"],
            "additionalProperties": false
        }));
        for prefix in [
            &b""[..],
            b"{\"name\":\"Jo",
            b"{\"name\":\"Jo\",\"tags\":[\"a",
        ] {
            let done = completion_of(&person, prefix).unwrap();
            let whole = format!("{}{done}", String::from_utf8_lossy(prefix));
            let value: Value = serde_json::from_str(&whole).unwrap();
            assert!(value["tags"].is_array() && value["age"].is_i64(), "{whole}");
            assert!(done.len() <= 32, "a long completion: {done:?}");
        }
        assert_eq!(
            completion_of(&person, b"{\"name\":\"Jo\",\"tags\":[\"a").unwrap(),
            r#""],"age":0}"#
        );
    }

    #[test]
    fn completions_of_bounded_numbers() {
        let n = Constraint::Json(json!({"type": "number"}));
        assert_eq!(completion_of(&n, b"").unwrap(), "0");
        assert_eq!(completion_of(&n, b"3.14").unwrap(), "");
    }

    #[test]
    fn completions_of_regexes_break_cycles() {
        let re = Constraint::Regex("a+b+c".into());
        assert_eq!(completion_of(&re, b"").unwrap(), "abc");
        let code = Constraint::Regex("[A-Z]{3}-[0-9]{2}".into());
        assert_eq!(completion_of(&code, b"AB").unwrap(), "A-00");
        let choice = Constraint::Choice(vec!["positive".into(), "negative".into()]);
        assert_eq!(completion_of(&choice, b"ne").unwrap(), "gative");
    }

    /// A loop whose class holds the byte that must follow it, where no pattern's NFA helps: in a
    /// JSON string's `pattern` and in a grammar's lexeme. Seen failing before [`explore`]: the
    /// walk alternated `0` and `a` until it gave up.
    #[test]
    fn completions_leave_loops_whose_class_holds_what_follows() {
        let pattern = r"^[a-z0-9.]+@[a-z.-]+\.[a-z]{2,}$";
        let full = regex::Regex::new(pattern).unwrap();
        let email = Constraint::Json(json!({
            "type": "object",
            "properties": {"email": {"type": "string", "pattern": pattern}},
            "required": ["email"],
            "additionalProperties": false
        }));
        for prefix in [&b""[..], b"{\"email\":\"jo", b"{\"email\":\"jo@x"] {
            let done = completion_of(&email, prefix).expect("a completion");
            let whole = format!("{}{done}", String::from_utf8_lossy(prefix));
            let value: Value = serde_json::from_str(&whole).unwrap();
            assert!(full.is_match(value["email"].as_str().unwrap()), "{whole}");
        }
        let lark = Constraint::Grammar(
            "start: \"to: \" EMAIL\nEMAIL: /[a-z0-9.]+@[a-z.-]+\\.[a-z]{2,}/\n".into(),
        );
        let done = completion_of(&lark, b"to: a").expect("a completion");
        assert!(full.is_match(&format!("a{done}")), "{done}");
        // A byte that ends the grammar is probed without asking the stopped matcher for its
        // mask (which broke the matcher for good); `completion_of` checks it is left intact.
        for grammar in [
            "start: /[a-z]+/ \"!\"",
            "start: \"<\" EMAIL \">\"\nEMAIL: /[a-z0-9.]+@[a-z]+/\n",
        ] {
            let constraint = Constraint::Grammar(grammar.into());
            let done = completion_of(&constraint, b"").unwrap_or_else(|| panic!("{grammar}"));
            assert!(
                done.ends_with('!') || done.ends_with('>'),
                "{grammar}: {done}"
            );
        }
    }

    #[test]
    fn unsupported_input_is_refused_with_a_reason() {
        let cases = [
            (Constraint::Regex("(a)\\1".into()), "Invalid regex pattern"),
            (
                Constraint::Regex("".into()),
                "Pattern cannot be null or empty",
            ),
            (
                Constraint::Regex("\\bword".into()),
                "Invalid regex pattern: word boundaries",
            ),
            (Constraint::Json(json!("str")), "Invalid JSON schema"),
            (
                Constraint::Json(json!({"not": {"minimum": 3}})),
                "Unimplemented keys: [\"not\"]",
            ),
            (
                Constraint::Json(json!({"$ref": "http://example.com/x.json"})),
                "Invalid JSON schema",
            ),
            (Constraint::Choice(vec!["a".into()]), "at least 2"),
            (
                Constraint::Choice(vec!["a".into(), "a".into()]),
                "Duplicate choice: a",
            ),
            (Constraint::Grammar("start: foo".into()), "Invalid grammar"),
        ];
        for (constraint, text) in cases {
            let e = constraint.check().unwrap_err();
            assert!(e.to_string().contains(text), "{constraint:?}: {e}");
        }
        let huge = Constraint::Regex("a".repeat(MAX_CONSTRAINT_BYTES + 1));
        assert_eq!(huge.check().unwrap_err().kind(), ErrorKind::LimitExceeded);
        for big in [
            Constraint::Regex("a{1000001}".into()),
            Constraint::Json(json!({"type": "string", "pattern": "x{5000}"})),
        ] {
            let e = big.check().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::LimitExceeded, "{e}");
        }
        let backref = Constraint::Regex("(a)\\1".into()).check().unwrap_err();
        assert!(backref.to_string().contains("backreference"), "{backref}");
    }

    /// What the README says of `not`, `uniqueItems`, `dependencies` and remote `$ref`: each
    /// form it calls refused is refused naming the keyword; each it calls accepted compiles.
    #[test]
    fn the_documented_schema_keywords_are_refused_or_accepted_as_documented() {
        let refused = [
            (json!({"not": {"minimum": 3}}), "not"),
            (
                json!({"type": "array", "uniqueItems": true, "minItems": 2}),
                "uniqueItems",
            ),
            (json!({"$ref": "http://example.com/x.json"}), "$ref"),
        ];
        for (schema, keyword) in refused {
            let e = Constraint::Json(schema.clone()).check().unwrap_err();
            assert!(e.to_string().contains(keyword), "{schema}: {e}");
        }
        let accepted = [
            json!({"not": {"type": "string"}}),
            json!({"type": "array", "uniqueItems": true}),
            json!({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
                   "dependencies": {"a": ["b"]}}),
        ];
        for schema in accepted {
            assert!(Constraint::Json(schema.clone()).check().is_ok(), "{schema}");
        }
    }

    #[test]
    fn keys_ignore_schema_key_order() {
        let a = Constraint::Json(json!({"type": "object", "required": ["a"]}));
        let b = Constraint::Json(json!({"required": ["a"], "type": "object"}));
        assert_eq!(a.key(), b.key());
        assert_ne!(a.key(), Constraint::Regex("x".into()).key());
    }
}
