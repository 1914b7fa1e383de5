//! Random regular expressions and JSON schemas, valid and not, through llguidance's compiler
//! and, for a sample, a few decoding steps: none may crash the process, and each either works or
//! is an error of an input kind (invalid argument, limit exceeded, incomplete).

use serde_json::{json, Value};
use steadytext::{Constraint, ErrorKind};

use crate::common::{constrained, generate};
use fastrand::Rng;

const REGEXES: usize = 3000;
const SCHEMAS: usize = 2000;
/// Every how many accepted constraints a few tokens are decoded.
const DECODE_EVERY: usize = 20;

/// Picks one of `items` (a fixed seed gives a fixed sequence, so a failure reproduces).
fn pick<'a, T>(rng: &mut Rng, items: &'a [T]) -> &'a T {
    &items[rng.usize(..items.len())]
}

fn regex(rng: &mut Rng, depth: usize) -> String {
    const ATOMS: &[&str] = &[
        "a",
        "b",
        "z",
        "0",
        "9",
        "é",
        "日",
        "\"",
        "'",
        "\\\\",
        "\\.",
        "\\(",
        "\\[",
        " ",
        "-",
        "_",
        "[a-z]",
        "[^x]",
        "[0-9A-F]",
        "[\\]\\-]",
        "\\d",
        "\\w",
        "\\s",
        "\\D",
        ".",
        "[α-ω]",
        "\\x41",
        "\\u{1F600}",
        "\\n",
        "\\t",
        "(?i:ab)",
        "[[:alpha:]]",
        "\\p{Greek}",
        // not allowed, or not valid at all
        "\\1",
        "(?=a)",
        "(?<!b)",
        "\\b",
        "^",
        "$",
        "(",
        ")",
        "[",
        "{2}",
        "*",
        "\\",
        "\\0",
        "(?P<n>a)",
    ];
    if depth == 0 || rng.usize(..3) == 0 {
        return pick(rng, ATOMS).to_string();
    }
    let a = regex(rng, depth - 1);
    match rng.usize(..7) {
        0 => format!("{a}{}", regex(rng, depth - 1)),
        1 => format!("({a}|{})", regex(rng, depth - 1)),
        2 => format!("(?:{a})*"),
        3 => format!("({a})+"),
        4 => format!("{a}?"),
        5 => format!("({a}){{{}}}", rng.usize(..1200)),
        _ => {
            let m = rng.usize(..20);
            format!("(?:{a}){{{m},{}}}", m + rng.usize(..30))
        }
    }
}

fn schema(rng: &mut Rng, depth: usize) -> Value {
    let leaf = |rng: &mut Rng| -> Value {
        match rng.usize(..12) {
            0 => json!({"type": "string", "maxLength": rng.usize(..40)}),
            1 => {
                json!({"type": "integer", "minimum": rng.usize(..100) as i64 - 50, "maximum": rng.usize(..100)})
            }
            2 => json!({"type": "number"}),
            3 => json!({"type": "boolean"}),
            4 => json!({"type": "null"}),
            5 => json!({"enum": ["a", 1, null, "é\"\\"]}),
            6 => json!({"const": rng.usize(..10)}),
            7 => json!({"type": "string", "pattern": regex(rng, 2)}),
            8 => {
                json!({"type": "string", "format": *pick(rng, &["date", "time", "uuid", "email", "nonsense"])})
            }
            9 => json!({"type": *pick(rng, &["strin", "object", "array", "int"])}),
            10 => json!({"$ref": "#/definitions/missing"}),
            _ => json!(rng.usize(..2) == 0),
        }
    };
    if depth == 0 || rng.usize(..3) == 0 {
        return leaf(rng);
    }
    match rng.usize(..4) {
        0 => {
            let mut props = serde_json::Map::new();
            let mut required = Vec::new();
            for i in 0..rng.usize(..4) {
                props.insert(format!("p{i}"), schema(rng, depth - 1));
                if rng.usize(..2) == 0 {
                    required.push(json!(format!("p{i}")));
                }
            }
            json!({"type": "object", "properties": props, "required": required,
                   "additionalProperties": rng.usize(..2) == 0})
        }
        1 => json!({"type": "array", "items": schema(rng, depth - 1),
                    "minItems": rng.usize(..3), "maxItems": 2 + rng.usize(..3)}),
        2 => json!({"anyOf": [schema(rng, depth - 1), schema(rng, depth - 1)]}),
        _ => json!({"allOf": [schema(rng, depth - 1)]}),
    }
}

fn input_error(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::InvalidArgument | ErrorKind::LimitExceeded | ErrorKind::Incomplete
    )
}

/// Checks one constraint; returns whether it was accepted.
fn exercise(constraint: &Constraint, decode: bool) -> bool {
    match constraint.check() {
        Ok(()) => {}
        Err(e) if input_error(e.kind()) => return false,
        Err(e) => panic!("{constraint:?}: unexpected error kind: {e:?}"),
    }
    if decode {
        match generate(constrained("Answer:", 4, constraint)) {
            Ok(_) => {}
            // A budget too small for the shortest output, a grammar that allows no token: errors,
            // not crashes.
            Err(e) if input_error(e.kind()) || e.kind() == ErrorKind::Inference => {}
            Err(e) => panic!("{constraint:?}: checked but failed: {e:?}"),
        }
    }
    true
}

#[test]
fn random_regexes_and_schemas_never_crash() {
    let mut rng = Rng::with_seed(0x5EED_1234_ABCD_0001);
    let (mut accepted, mut decoded) = (0usize, 0usize);
    for i in 0..REGEXES + SCHEMAS {
        let constraint = if i < REGEXES {
            Constraint::Regex(regex(&mut rng, 4))
        } else {
            Constraint::Json(schema(&mut rng, 3))
        };
        let decode = accepted % DECODE_EVERY == 0;
        if exercise(&constraint, decode) {
            decoded += usize::from(decode);
            accepted += 1;
        }
    }
    eprintln!(
        "fuzz: {} constraints ({REGEXES} regexes, {SCHEMAS} schemas), {accepted} accepted, {decoded} decoded",
        REGEXES + SCHEMAS
    );
    assert!(
        accepted > 500,
        "the generators should produce many valid constraints"
    );
}
