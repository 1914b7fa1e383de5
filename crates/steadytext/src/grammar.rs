//! Constraints on generated text (a JSON schema, a regular expression, a list of choices) as
//! llama.cpp GBNF grammars. Every grammar is built and checked here, before any decoding, so
//! that bad input is an error and never reaches llama.cpp's decoder.
//!
//! Regular expressions are parsed by `regex-syntax` and translated construct by construct
//! (classes, repetition with bounds, alternation, groups, escapes, Unicode). What a grammar
//! cannot express (backreferences, look-around, word boundaries, anchors inside the pattern) is
//! an error that names the construct.

use std::fmt::Write;

use regex_syntax::hir::{Class, Hir, HirKind, Look};

use crate::error::{Error, Result};

/// What the output must be.
#[derive(Debug, Clone, PartialEq)]
pub enum Constraint {
    /// JSON that validates against this JSON schema.
    Json(serde_json::Value),
    /// Text that the regular expression matches in full.
    Regex(String),
    /// Exactly one of these strings.
    Choice(Vec<String>),
}

/// Largest repetition count, and largest expanded size of a pattern (repetitions multiply).
const MAX_REPEAT: u32 = 1000;
const MAX_EXPANDED: u64 = 20_000;

impl Constraint {
    /// The GBNF grammar (root rule `root`).
    pub fn to_gbnf(&self) -> Result<String> {
        match self {
            Constraint::Json(schema) => json_gbnf(schema),
            Constraint::Regex(pattern) => regex_gbnf(pattern),
            Constraint::Choice(choices) => choice_gbnf(choices),
        }
    }

    /// The kind and parameter, for cache keys and errors (`json:{schema}` etc.).
    pub fn key(&self) -> String {
        match self {
            Constraint::Json(schema) => format!("json:{}", canonical_json(schema)),
            Constraint::Regex(pattern) => format!("regex:{pattern}"),
            Constraint::Choice(choices) => {
                format!(
                    "choice:{}",
                    serde_json::to_string(choices).unwrap_or_default()
                )
            }
        }
    }
}

/// JSON with object keys sorted, so equal schemas give equal keys.
fn canonical_json(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<_> = map.keys().collect();
            keys.sort();
            let items: Vec<String> = keys
                .iter()
                .map(|k| {
                    format!(
                        "{}:{}",
                        serde_json::Value::from(k.as_str()),
                        canonical_json(&map[*k])
                    )
                })
                .collect();
            format!("{{{}}}", items.join(","))
        }
        serde_json::Value::Array(items) => {
            format!(
                "[{}]",
                items
                    .iter()
                    .map(canonical_json)
                    .collect::<Vec<_>>()
                    .join(",")
            )
        }
        other => other.to_string(),
    }
}

fn invalid(message: String) -> Error {
    Error::InvalidArgument(message)
}

fn json_gbnf(schema: &serde_json::Value) -> Result<String> {
    if !(schema.is_object() || schema.is_boolean()) {
        return Err(invalid(format!(
            "Invalid JSON schema: a schema is an object or a boolean, got {schema}"
        )));
    }
    let mut schema = schema.clone();
    rewrite_schema_patterns(&mut schema)?;
    llama_cpp_2::json_schema_to_grammar(&schema.to_string()).map_err(|_| {
        invalid("Invalid JSON schema: llama.cpp cannot convert it to a grammar".into())
    })
}

fn choice_gbnf(choices: &[String]) -> Result<String> {
    if choices.len() < 2 {
        return Err(invalid("Must provide at least 2 choices".into()));
    }
    let mut seen = std::collections::HashSet::new();
    for choice in choices {
        if choice.is_empty() {
            return Err(invalid("Choices cannot contain empty strings".into()));
        }
        if !seen.insert(choice) {
            return Err(invalid(format!("Duplicate choice: {choice}")));
        }
        check_no_nul(choice)?;
    }
    let alternatives: Vec<String> = choices.iter().map(|c| literal(c)).collect();
    Ok(format!("root ::= {}\n", alternatives.join(" | ")))
}

fn check_no_nul(text: &str) -> Result<()> {
    if text.contains('\0') {
        return Err(invalid("NUL characters cannot be generated".into()));
    }
    Ok(())
}

/// A GBNF string literal; everything but printable ASCII is escaped.
fn literal(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            _ => push_escaped(&mut out, c),
        }
    }
    out.push('"');
    out
}

fn push_escaped(out: &mut String, c: char) {
    let _ = write!(out, "\\U{:08X}", c as u32);
}

/// One character in a GBNF class: letters and digits as they are, everything else escaped.
fn class_char(out: &mut String, c: char) {
    if c.is_ascii_alphanumeric() {
        out.push(c);
    } else {
        push_escaped(out, c);
    }
}

fn regex_gbnf(pattern: &str) -> Result<String> {
    if pattern.is_empty() {
        return Err(invalid("Pattern cannot be null or empty".into()));
    }
    let hir = regex_syntax::ParserBuilder::new()
        .build()
        .parse(pattern)
        .map_err(|e| {
            invalid(format!(
                "Invalid regex pattern: {}",
                describe_parse_error(&e)
            ))
        })?;
    let hir = strip_outer_anchors(hir);
    check_ambiguity(&hir, 0)?;
    let size = expanded_size(&hir)?;
    if size > MAX_EXPANDED {
        return Err(invalid(format!(
            "Regex pattern too large: it expands to about {size} elements (at most {MAX_EXPANDED})"
        )));
    }
    let mut out = String::new();
    write_hir(&mut out, &hir)?;
    Ok(format!("root ::= {out}\n"))
}

/// regex-syntax's own message, which names the unsupported construct, on one line.
fn describe_parse_error(error: &regex_syntax::Error) -> String {
    let text = error.to_string();
    text.lines()
        .filter(|l| l.starts_with("error:"))
        .map(|l| l.trim_start_matches("error:").trim().to_string())
        .next()
        .unwrap_or_else(|| text.lines().last().unwrap_or_default().trim().to_string())
}

/// `^` at the start and `$` at the end (of the pattern or of each top-level alternative) only
/// restate that the whole output must match.
fn strip_outer_anchors(hir: Hir) -> Hir {
    let is_start = |h: &Hir| matches!(h.kind(), HirKind::Look(Look::Start | Look::StartLF));
    let is_end = |h: &Hir| matches!(h.kind(), HirKind::Look(Look::End | Look::EndLF));
    match hir.into_kind() {
        HirKind::Alternation(alts) => {
            Hir::alternation(alts.into_iter().map(strip_outer_anchors).collect())
        }
        HirKind::Concat(mut parts) => {
            if parts.first().is_some_and(is_start) {
                parts.remove(0);
            }
            if parts.last().is_some_and(is_end) {
                parts.pop();
            }
            Hir::concat(parts)
        }
        HirKind::Look(Look::Start | Look::StartLF | Look::End | Look::EndLF) => Hir::empty(),
        other => rebuild(other),
    }
}

fn rebuild(kind: HirKind) -> Hir {
    match kind {
        HirKind::Empty => Hir::empty(),
        HirKind::Literal(l) => Hir::literal(l.0),
        HirKind::Class(c) => Hir::class(c),
        HirKind::Look(l) => Hir::look(l),
        HirKind::Repetition(r) => Hir::repetition(r),
        HirKind::Capture(c) => Hir::capture(c),
        HirKind::Concat(v) => Hir::concat(v),
        HirKind::Alternation(v) => Hir::alternation(v),
    }
}

/// Quantifiers nested deeper than this are refused.
const MAX_NESTED_REPEATS: usize = 2;

/// llama.cpp's grammar engine follows every way a pattern can match; a quantifier over an
/// expression that can match nothing (`(a*)*`, `(a?){2,9}`) or deeply nested quantifiers make
/// that number explode, and a single token step can then run for minutes. Such patterns are
/// refused before decoding.
fn check_ambiguity(hir: &Hir, depth: usize) -> Result<()> {
    match hir.kind() {
        HirKind::Repetition(rep) => {
            if rep.max != Some(1) && rep.sub.properties().minimum_len() == Some(0) {
                return Err(invalid(
                    "Regex pattern repeats an expression that can match nothing (like (a*)* or \
                     (a?){2,}); remove the inner quantifier"
                        .into(),
                ));
            }
            if depth >= MAX_NESTED_REPEATS {
                return Err(invalid(format!(
                    "Regex quantifiers are nested more than {MAX_NESTED_REPEATS} deep"
                )));
            }
            check_ambiguity(&rep.sub, depth + 1)
        }
        HirKind::Capture(c) => check_ambiguity(&c.sub, depth),
        HirKind::Concat(parts) | HirKind::Alternation(parts) => {
            parts.iter().try_for_each(|p| check_ambiguity(p, depth))
        }
        _ => Ok(()),
    }
}

/// Keywords whose values are data, not schemas: a `pattern` key inside them is left alone.
const DATA_KEYWORDS: [&str; 4] = ["const", "enum", "default", "examples"];

/// Rewrites every `pattern` keyword for llama.cpp's JSON-schema converter. That converter reads
/// a small regex dialect, only whole-string (`^...$`) patterns, and silently accepts *any*
/// string for everything else (`\d`, `\w`, `(?i)`, an unanchored pattern), so the output
/// would not validate. Each pattern is parsed here (held to the rules of
/// [`Constraint::Regex`]) and written back in that dialect, with JSON Schema's search
/// semantics made explicit: an end without an anchor gets "any characters" added.
fn rewrite_schema_patterns(schema: &mut serde_json::Value) -> Result<()> {
    match schema {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::String(pattern)) = map.get_mut("pattern") {
                *pattern = llama_pattern(pattern).map_err(|e| {
                    invalid(format!("Invalid JSON schema: pattern {pattern:?}: {e}"))
                })?;
            }
            for (key, value) in map.iter_mut() {
                match (key.as_str(), value) {
                    // Maps from names to schemas: a property may be called "const".
                    (
                        "properties" | "patternProperties" | "$defs" | "definitions"
                        | "dependentSchemas",
                        serde_json::Value::Object(schemas),
                    ) => schemas.values_mut().try_for_each(rewrite_schema_patterns)?,
                    (key, _) if DATA_KEYWORDS.contains(&key) => {}
                    (_, value) => rewrite_schema_patterns(value)?,
                }
            }
            Ok(())
        }
        serde_json::Value::Array(items) => items.iter_mut().try_for_each(rewrite_schema_patterns),
        _ => Ok(()),
    }
}

/// Any character a JSON string can hold unescaped, in llama.cpp's pattern dialect.
const ANY_JSON_CHARS: &str = r#"[^\\"\x00-\x1F]*"#;

/// `pattern` (JSON Schema semantics: a match anywhere) as a whole-string pattern in llama.cpp's
/// dialect: literals, `[...]` classes with `\UXXXXXXXX` escapes, groups, `|`, `*`, `+`, `?`, `{m,n}`.
fn llama_pattern(pattern: &str) -> Result<String> {
    regex_gbnf(pattern)?;
    let hir = regex_syntax::ParserBuilder::new()
        .build()
        .parse(pattern)
        .map_err(|e| invalid(describe_parse_error(&e)))?;
    let alternatives = match hir.into_kind() {
        HirKind::Alternation(alts) => alts,
        other => vec![rebuild(other)],
    };
    let mut out = Vec::new();
    for alt in alternatives {
        let mut parts = match alt.into_kind() {
            HirKind::Concat(parts) => parts,
            other => vec![rebuild(other)],
        };
        let is_start = |h: &Hir| matches!(h.kind(), HirKind::Look(Look::Start | Look::StartLF));
        let is_end = |h: &Hir| matches!(h.kind(), HirKind::Look(Look::End | Look::EndLF));
        let start = parts.first().is_some_and(is_start);
        if start {
            parts.remove(0);
        }
        let end = !parts.is_empty() && parts.last().is_some_and(is_end);
        if end {
            parts.pop();
        }
        let mut text = String::new();
        if !start {
            text.push_str(ANY_JSON_CHARS);
        }
        for part in &parts {
            write_llama(&mut text, part)?;
        }
        if !end {
            text.push_str(ANY_JSON_CHARS);
        }
        if text.is_empty() {
            return Err(invalid(
                "a pattern that matches only the empty string is not supported".into(),
            ));
        }
        out.push(text);
    }
    Ok(format!("^({})$", out.join("|")))
}

fn write_llama(out: &mut String, hir: &Hir) -> Result<()> {
    match hir.kind() {
        HirKind::Empty => {}
        HirKind::Literal(lit) => {
            let text = std::str::from_utf8(&lit.0)
                .map_err(|_| invalid("Regex matches bytes that are not UTF-8".into()))?;
            for c in text.chars() {
                llama_literal_char(out, c)?;
            }
        }
        HirKind::Class(class) => {
            // The converter copies classes into the JSON string unescaped: characters JSON
            // must escape are left out (the output can only be narrower, never invalid).
            let ranges = class_ranges(class)?
                .into_iter()
                .flat_map(|(a, b)| json_safe_ranges(a, b))
                .collect::<Vec<_>>();
            if ranges.is_empty() {
                return Err(invalid(
                    "Regex class matches only characters a JSON string must escape".into(),
                ));
            }
            out.push('[');
            for (a, b) in ranges {
                let _ = write!(out, "\\U{:08X}-\\U{:08X}", a as u32, b as u32);
            }
            out.push(']');
        }
        HirKind::Look(look) => return Err(unsupported_look(*look)),
        HirKind::Capture(capture) => {
            out.push('(');
            write_llama(out, &capture.sub)?;
            out.push(')');
        }
        HirKind::Concat(parts) => {
            out.push('(');
            for part in parts {
                write_llama(out, part)?;
            }
            out.push(')');
        }
        HirKind::Alternation(alts) => {
            // An empty alternative becomes an optional group: `(a|)` is written `(a)?`.
            let mut written = Vec::new();
            for alt in alts.iter().filter(|a| !matches!(a.kind(), HirKind::Empty)) {
                let mut text = String::new();
                write_llama(&mut text, alt)?;
                written.push(text);
            }
            let _ = write!(out, "({})", written.join("|"));
            if written.len() < alts.len() {
                out.push('?');
            }
        }
        HirKind::Repetition(rep) => {
            out.push('(');
            write_llama(out, &rep.sub)?;
            out.push(')');
            push_quantifier(out, rep.min, rep.max);
        }
    }
    Ok(())
}

/// One literal character in llama.cpp's pattern dialect, as it must appear inside a JSON string.
fn llama_literal_char(out: &mut String, c: char) -> Result<()> {
    match c {
        '"' => out.push('"'), // the converter writes it as \" in the JSON string
        '\\' | '\0'..='\u{1F}' => {
            return Err(invalid(format!(
                "a JSON schema pattern cannot require {c:?}: JSON escapes it, and the generated \
                 text would not match"
            )))
        }
        c if c.is_ascii_alphanumeric() || !c.is_ascii() => out.push(c),
        c => {
            out.push('\\');
            out.push(c);
        }
    }
    Ok(())
}

/// `a..=b` without control characters, `"` and `\\`.
fn json_safe_ranges(a: char, b: char) -> Vec<(char, char)> {
    let mut out = Vec::new();
    let mut from = a.max('\u{20}');
    for hole in ['"', '\\'] {
        if from <= hole && hole <= b {
            if from < hole {
                out.push((from, char::from_u32(hole as u32 - 1).expect("ASCII")));
            }
            from = char::from_u32(hole as u32 + 1).expect("ASCII");
        }
    }
    if from <= b {
        out.push((from, b));
    }
    out
}

/// About how many grammar elements the pattern expands to (llama.cpp unrolls repetitions).
fn expanded_size(hir: &Hir) -> Result<u64> {
    Ok(match hir.kind() {
        HirKind::Empty | HirKind::Look(_) | HirKind::Class(_) => 1,
        HirKind::Literal(l) => l.0.len().max(1) as u64,
        HirKind::Capture(c) => expanded_size(&c.sub)?,
        HirKind::Concat(parts) | HirKind::Alternation(parts) => {
            let mut total = 0u64;
            for p in parts {
                total = total.saturating_add(expanded_size(p)?);
            }
            total
        }
        HirKind::Repetition(r) => {
            let bound = r.max.unwrap_or(r.min).max(1);
            if bound > MAX_REPEAT {
                return Err(invalid(format!(
                    "Regex repetition count {bound} is above the supported maximum {MAX_REPEAT}"
                )));
            }
            expanded_size(&r.sub)?.saturating_mul(u64::from(bound))
        }
    })
}

fn write_hir(out: &mut String, hir: &Hir) -> Result<()> {
    match hir.kind() {
        HirKind::Empty => out.push_str("\"\""),
        HirKind::Literal(lit) => {
            let text = std::str::from_utf8(&lit.0)
                .map_err(|_| invalid("Regex matches bytes that are not UTF-8".into()))?;
            check_no_nul(text)?;
            out.push_str(&literal(text));
        }
        HirKind::Class(class) => write_class(out, class)?,
        HirKind::Look(look) => return Err(unsupported_look(*look)),
        HirKind::Capture(capture) => {
            out.push('(');
            write_hir(out, &capture.sub)?;
            out.push(')');
        }
        HirKind::Concat(parts) => {
            out.push('(');
            for (i, part) in parts.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_hir(out, part)?;
            }
            out.push(')');
        }
        HirKind::Alternation(alts) => {
            out.push('(');
            for (i, alt) in alts.iter().enumerate() {
                if i > 0 {
                    out.push_str(" | ");
                }
                write_hir(out, alt)?;
            }
            out.push(')');
        }
        HirKind::Repetition(rep) => {
            out.push('(');
            write_hir(out, &rep.sub)?;
            out.push(')');
            push_quantifier(out, rep.min, rep.max);
        }
    }
    Ok(())
}

fn write_class(out: &mut String, class: &Class) -> Result<()> {
    out.push('[');
    for (start, end) in class_ranges(class)? {
        class_char(out, start);
        if end != start {
            out.push('-');
            class_char(out, end);
        }
    }
    out.push(']');
    Ok(())
}

/// The class's ranges as characters, without NUL; refused when nothing is left or when it
/// holds bytes beyond ASCII.
fn class_ranges(class: &Class) -> Result<Vec<(char, char)>> {
    let ranges: Vec<(char, char)> = match class {
        Class::Unicode(c) => c.ranges().iter().map(|r| (r.start(), r.end())).collect(),
        Class::Bytes(c) => {
            let mut ranges = Vec::new();
            for r in c.ranges() {
                if r.end() > 0x7F {
                    return Err(invalid(
                        "Regex byte classes beyond ASCII are not supported; use Unicode classes"
                            .into(),
                    ));
                }
                ranges.push((char::from(r.start()), char::from(r.end())));
            }
            ranges
        }
    };
    // NUL is never generated: drop it from classes rather than refusing `.` or `[^a]`.
    let ranges: Vec<(char, char)> = ranges
        .into_iter()
        .filter_map(|(a, b)| match (a, b) {
            ('\0', '\0') => None,
            ('\0', b) => Some(('\u{1}', b)),
            r => Some(r),
        })
        .collect();
    if ranges.is_empty() {
        return Err(invalid("Regex class matches no character".into()));
    }
    Ok(ranges)
}

/// A quantifier, in the syntax GBNF and llama.cpp's pattern dialect share.
fn push_quantifier(out: &mut String, min: u32, max: Option<u32>) {
    match (min, max) {
        (0, None) => out.push('*'),
        (1, None) => out.push('+'),
        (0, Some(1)) => out.push('?'),
        (min, None) => {
            let _ = write!(out, "{{{min},}}");
        }
        (min, Some(max)) if min == max => {
            let _ = write!(out, "{{{min}}}");
        }
        (min, Some(max)) => {
            let _ = write!(out, "{{{min},{max}}}");
        }
    }
}

fn unsupported_look(look: Look) -> Error {
    invalid(format!(
        "Regex construct not supported in generation: {}",
        look_name(look)
    ))
}

fn look_name(look: Look) -> &'static str {
    match look {
        Look::Start | Look::StartLF | Look::StartCRLF => "the start anchor (^) inside the pattern",
        Look::End | Look::EndLF | Look::EndCRLF => "the end anchor ($) inside the pattern",
        _ => "word boundaries (\\b, \\B)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_patterns_are_rewritten_for_llama_cpp() {
        let any = ANY_JSON_CHARS;
        assert_eq!(llama_pattern("^ab$").unwrap(), "^(ab)$");
        assert_eq!(llama_pattern("ab").unwrap(), format!("^({any}ab{any})$"));
        assert_eq!(
            llama_pattern("^a|b$").unwrap(),
            format!("^(a{any}|{any}b)$")
        );
        assert_eq!(
            llama_pattern("^[0-9]{2}$").unwrap(),
            "^(([\\U00000030-\\U00000039]){2})$"
        );
        // Quote and backslash are left out of classes; a literal quote stays (JSON escapes it).
        assert_eq!(
            llama_pattern("^[!-#]\"$").unwrap(),
            "^([\\U00000021-\\U00000021\\U00000023-\\U00000023]\")$"
        );
        assert_eq!(llama_pattern("^(a|)$").unwrap(), "^(((a)?))$");
        assert!(llama_pattern("^a\\\\b$").is_err(), "a literal backslash");
        assert!(llama_pattern("^$").is_err());
        assert!(llama_pattern("(a)\\1").is_err(), "backreference");
        let mut schema = serde_json::json!({"properties": {"const": {"pattern": "x"}},
                                            "const": {"pattern": "x"}});
        rewrite_schema_patterns(&mut schema).unwrap();
        assert_eq!(
            schema["properties"]["const"]["pattern"],
            format!("^({any}x{any})$")
        );
        assert_eq!(schema["const"]["pattern"], "x", "data is left alone");
    }

    fn gbnf(pattern: &str) -> String {
        regex_gbnf(pattern).unwrap()
    }

    fn error(pattern: &str) -> String {
        regex_gbnf(pattern).unwrap_err().to_string()
    }

    #[test]
    fn regex_constructs_translate() {
        assert_eq!(gbnf("abc"), "root ::= \"abc\"\n");
        assert_eq!(gbnf("^ab|cd$"), "root ::= (\"ab\" | \"cd\")\n");
        assert_eq!(gbnf("[a-c]{2,4}"), "root ::= ([a-c]){2,4}\n");
        assert_eq!(gbnf("x+y*z?"), "root ::= ((\"x\")+ (\"y\")* (\"z\")?)\n");
        // \d is any Unicode digit (as in the regex crate and Python); (?-u:\d) is ASCII.
        assert!(gbnf("\\d").contains("\\U00000660-\\U00000669"));
        assert_eq!(gbnf("(?-u:\\d){3}"), "root ::= ([0-9]){3}\n");
        assert_eq!(gbnf("(?:ab){2,}"), "root ::= (\"ab\"){2,}\n");
        assert_eq!(gbnf("é"), "root ::= \"\\U000000E9\"\n");
        assert_eq!(gbnf("[\"\\]]"), "root ::= [\\U00000022\\U0000005D]\n");
    }

    #[test]
    fn unsupported_constructs_are_named() {
        assert!(
            error("(a)\\1").contains("backreferences"),
            "{}",
            error("(a)\\1")
        );
        assert!(
            error("a(?=b)").contains("look-around"),
            "{}",
            error("a(?=b)")
        );
        assert!(error("\\bword").contains("word boundaries"));
        assert!(error("a^b").contains("start anchor"));
        assert!(error("a{2000}").contains("maximum 1000"));
        assert!(error("(a{200}){200}").contains("too large"));
        assert!(error("(a*)*").contains("can match nothing"));
        assert!(error("(?:a?){2,9}").contains("can match nothing"));
        assert!(error("((a+)+)+").contains("nested more than 2 deep"));
        assert!(error("[").starts_with("Invalid regex pattern"));
        assert_eq!(error(""), "Pattern cannot be null or empty");
    }

    #[test]
    fn choices_are_escaped_and_checked() {
        let g = choice_gbnf(&["a\"b".into(), "c\\d".into(), "naïve".into()]).unwrap();
        assert_eq!(
            g,
            "root ::= \"a\\\"b\" | \"c\\\\d\" | \"na\\U000000EFve\"\n"
        );
        let err = |c: &[&str]| {
            choice_gbnf(&c.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(err(&["only"]), "Must provide at least 2 choices");
        assert_eq!(err(&["a", "a"]), "Duplicate choice: a");
        assert_eq!(err(&["a", ""]), "Choices cannot contain empty strings");
    }

    #[test]
    fn equal_schemas_give_equal_keys() {
        let a = Constraint::Json(serde_json::json!({"type": "object", "required": ["a"]}));
        let b = Constraint::Json(serde_json::json!({"required": ["a"], "type": "object"}));
        assert_eq!(a.key(), b.key());
    }
}
