//! Prompt templates (the SQL prompt registry): Jinja2 syntax through minijinja, the variables a
//! template needs, and rendering that refuses missing variables unless they have a default.
//!
//! A template is a program its author controls, and other roles render stored ones. Rendering runs
//! in a child process (`isolate`) with a memory bound, whatever the template does (`~` and `+` on
//! strings, `*`, filters, loops, macros, recursion), besides the fuel and output limits here.

use std::time::Duration;

use minijinja::{Environment, ErrorKind as JinjaKind, UndefinedBehavior};
use serde_json::Value;

use crate::error::{Error, ErrorKind, Result};
use crate::isolate::{self, Bounds};

/// Most bytes in a template.
pub const MAX_TEMPLATE_BYTES: usize = 64 * 1024;
/// Most bytes a rendering may produce.
pub const MAX_OUTPUT_BYTES: usize = 1 << 20;
/// Engine instructions one rendering may run: bounds the time a template can take (a loop over
/// `range(100000)` inside another runs out).
const FUEL: u64 = 10_000_000;
/// Memory a rendering may use unless the caller says otherwise (`steadytext.max_template_memory`
/// in PostgreSQL).
pub const DEFAULT_MEMORY_BYTES: usize = 16 << 20;
/// Wall-clock time a rendering may take (the fuel usually ends it first).
const TIME: Duration = Duration::from_secs(10);

/// Refuses a template larger than [`MAX_TEMPLATE_BYTES`].
pub fn check_size(template: &str) -> Result<()> {
    if template.len() > MAX_TEMPLATE_BYTES {
        return Err(Error::limit(
            &format!("the template has {} bytes", template.len()),
            MAX_TEMPLATE_BYTES,
            "prompt templates",
        ));
    }
    Ok(())
}

/// A template's syntax error, with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// What is wrong.
    pub message: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column (in characters), when known.
    pub column: Option<usize>,
}

impl std::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.message)?;
        match (self.line, self.column) {
            (Some(line), Some(column)) => write!(f, " (line {line}, column {column})"),
            (Some(line), None) => write!(f, " (line {line})"),
            _ => Ok(()),
        }
    }
}

fn environment(behavior: UndefinedBehavior) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(behavior);
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(64);
    env
}

/// Collects output up to [`MAX_OUTPUT_BYTES`], then fails the rendering.
struct Capped(Vec<u8>);

impl std::io::Write for Capped {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + bytes.len() > MAX_OUTPUT_BYTES {
            return Err(std::io::Error::other("output limit"));
        }
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Renders within the fuel and output limits.
fn render_capped(
    env: &Environment<'_>,
    template: &str,
    variables: &impl serde::Serialize,
) -> std::result::Result<String, minijinja::Error> {
    let compiled = env.template_from_str(template)?;
    let mut out = Capped(Vec::new());
    compiled.render_captured_to(variables, &mut out)?;
    Ok(String::from_utf8_lossy(&out.0).into_owned())
}

fn column_of(source: &str, error: &minijinja::Error) -> Option<usize> {
    let start = error.range()?.start.min(source.len());
    let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
    Some(source[line_start..start].chars().count() + 1)
}

/// The variables `template` reads that it does not set itself, sorted; a syntax error otherwise.
pub fn required_variables(template: &str) -> std::result::Result<Vec<String>, SyntaxError> {
    let env = environment(UndefinedBehavior::Strict);
    let compiled = env.template_from_str(template).map_err(|e| SyntaxError {
        message: e.detail().unwrap_or("syntax error").to_string(),
        line: e.line(),
        column: column_of(template, &e),
    })?;
    let globals: Vec<&str> = env.globals().map(|(name, _)| name).collect();
    let mut names: Vec<String> = compiled
        .undeclared_variables(false)
        .into_iter()
        .filter(|name| !globals.contains(&name.as_str()))
        .collect();
    names.sort();
    Ok(names)
}

/// Renders `template` with `variables` (a JSON object), in a child process that may use at most
/// `memory_bytes` more memory than the caller has (an error of kind `LimitExceeded` names
/// `memory_setting` otherwise); `interrupted` is asked every 50 ms. Strict: a variable that is
/// missing and has no `default` filter is an error naming every missing required variable;
/// otherwise missing variables render empty.
pub fn render(
    template: &str,
    variables: &Value,
    strict: bool,
    memory_bytes: usize,
    memory_setting: &'static str,
    interrupted: &dyn Fn() -> bool,
) -> Result<String> {
    check_size(template)?;
    if !variables.is_object() {
        return Err(Error::invalid(format!(
            "variables must be a JSON object, got {variables}"
        )));
    }
    let bounds = Bounds {
        memory_bytes,
        output_bytes: MAX_OUTPUT_BYTES,
        time: TIME,
        what: "Template rendering error: the template",
        memory_setting,
    };
    isolate::run(bounds, interrupted, || {
        render_here(template, variables, strict)
    })
}

/// [`render`] in this process, with the fuel and output limits only.
fn render_here(template: &str, variables: &Value, strict: bool) -> Result<String> {
    let Value::Object(given) = variables else {
        return Err(Error::invalid(format!(
            "variables must be a JSON object, got {variables}"
        )));
    };
    let required = required_variables(template)
        .map_err(|e| Error::invalid(format!("Template syntax error: {e}")))?;
    let behavior = if strict {
        UndefinedBehavior::SemiStrict
    } else {
        UndefinedBehavior::Lenient
    };
    let env = environment(behavior);
    render_capped(&env, template, variables).map_err(|e| match e.kind() {
        JinjaKind::UndefinedError => {
            let missing = missing_variables(&env, template, &required, given);
            if missing.is_empty() {
                Error::invalid(format!("Undefined variable in template: {e}"))
            } else {
                Error::invalid(format!(
                    "Missing required variables: {}",
                    missing.join(", ")
                ))
            }
        }
        JinjaKind::SyntaxError => Error::invalid(format!("Template syntax error: {e}")),
        JinjaKind::OutOfFuel => Error::new(
            ErrorKind::LimitExceeded,
            format!("Template rendering error: the template runs more than {FUEL} steps"),
        ),
        JinjaKind::WriteFailure => Error::new(
            ErrorKind::LimitExceeded,
            format!("Template rendering error: the output is larger than {MAX_OUTPUT_BYTES} bytes"),
        ),
        _ => Error::new(
            ErrorKind::InvalidArgument,
            format!("Template rendering error: {e}"),
        ),
    })
}

/// The variables whose absence makes rendering fail: each missing variable is tried alone, with
/// the other missing ones given (so one with a `default` filter is not named).
fn missing_variables(
    env: &Environment<'_>,
    template: &str,
    required: &[String],
    given: &serde_json::Map<String, Value>,
) -> Vec<String> {
    let absent: Vec<&String> = required
        .iter()
        .filter(|n| !given.contains_key(*n))
        .collect();
    absent
        .iter()
        .filter(|name| {
            let mut trial = given.clone();
            for other in absent.iter().filter(|o| o != name) {
                trial.insert((*other).clone(), Value::from(""));
            }
            matches!(
                render_capped(env, template, &trial).map_err(|e| e.kind()),
                Err(JinjaKind::UndefinedError)
            )
        })
        .map(|name| (*name).clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render_test(template: &str, variables: &Value, strict: bool) -> Result<String> {
        render(
            template,
            variables,
            strict,
            DEFAULT_MEMORY_BYTES,
            "test.memory",
            &|| false,
        )
    }

    #[test]
    fn required_variables_are_what_the_template_reads() {
        let t = "Hello {{ name }}{% set x = 1 %}{{ x }} {% for i in items %}{{ i }}{% endfor %} {{ range(3) | length }}";
        assert_eq!(required_variables(t).unwrap(), ["items", "name"]);
        let e = required_variables("line one\nçé {{ name ").unwrap_err();
        assert_eq!(e.line, Some(2));
        // Counted in characters: "çé " takes 3 columns (5 bytes), like "ce ".
        let ascii = required_variables("line one\nce {{ name ").unwrap_err();
        assert!(
            e.column.is_some() && e.column == ascii.column,
            "{e:?} vs {ascii:?}"
        );
    }

    #[test]
    fn strict_rendering_refuses_missing_variables_except_defaults() {
        let t = "{{ greeting | default('Hi') }}, {{ name }} and {{ other }}";
        let e = render_test(t, &json!({}), true).unwrap_err();
        assert_eq!(e.message(), "Missing required variables: name, other");
        assert_eq!(
            render_test(t, &json!({"name": "Ann", "other": "Bo"}), true).unwrap(),
            "Hi, Ann and Bo"
        );
        assert_eq!(
            render_test(t, &json!({"name": "Ann"}), false).unwrap(),
            "Hi, Ann and "
        );
        assert!(render_test(t, &json!([1]), true).is_err());
    }

    #[test]
    fn renderings_are_bounded_in_time_and_output() {
        let slow =
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}";
        let e = render_test(slow, &json!({}), false).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::LimitExceeded, "{e}");
        let big = "{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}";
        let e = render_test(big, &json!({}), false).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::LimitExceeded, "{e}");
        assert!(check_size(&"x".repeat(MAX_TEMPLATE_BYTES + 1)).is_err());
    }

    /// Templates built from every way of making a value larger (concatenation with ~ and +,
    /// repetition, filters that copy, lists grown in loops, macros, recursion), nested up to a
    /// few levels and driven by loops: each renders or is refused as a limit, and the process
    /// that asked is still here to count them.
    #[test]
    fn generated_templates_never_exhaust_memory() {
        let seeds = [
            "'x' * 100000",
            "'ab' * 5000000",
            "range(10000) | list",
            "(range(1000) | list) * 100",
            "'y' ~ 'z'",
            "[1, 2, 3] * 30000",
        ];
        let growers = [
            "{v} ~ {v}",
            "{v} + {v}",
            "[{v}, {v}]",
            "{v} | replace('x', 'xx')",
            "({v} ~ '') * 2",
            "{v} | join(',')",
            "{v} | string | center(1000000)",
            "{v} | tojson",
            "({v} | list) + ({v} | list)",
            "{v} | indent(8)",
            "{v} ~ ({v} | upper)",
        ];
        let mut rng = fastrand::Rng::with_seed(7);
        let (mut rendered, mut refused) = (0, 0);
        let cases = 600;
        for case in 0..cases {
            let seed = seeds[rng.usize(..seeds.len())];
            let mut body = format!("{{% set v0 = {seed} %}}");
            let depth = 1 + rng.usize(..5);
            for level in 1..=depth {
                let grow =
                    growers[rng.usize(..growers.len())].replace("{v}", &format!("v{}", level - 1));
                body.push_str(&match rng.usize(..4) {
                    0 => format!("{{% set v{level} = {grow} %}}"),
                    1 => format!("{{% macro m{level}(v{}) %}}{{{{ {grow} }}}}{{% endmacro %}}{{% set v{level} = m{level}(v{}) %}}", level - 1, level - 1),
                    2 => format!("{{% set ns{level} = namespace(v=v{}) %}}{{% for i in range(4) %}}{{% set ns{level}.v = ns{level}.v ~ ns{level}.v %}}{{% endfor %}}{{% set v{level} = ns{level}.v %}}", level - 1),
                    _ => format!("{{% macro r{level}(n, v) %}}{{% if n > 0 %}}{{{{ r{level}(n - 1, v ~ v) }}}}{{% else %}}{{{{ v | length }}}}{{% endif %}}{{% endmacro %}}{{% set v{level} = r{level}(12, v{}) %}}", level - 1),
                });
            }
            body.push_str(&format!("{{{{ v{depth} | length }}}}"));
            match render_test(&body, &json!({}), false) {
                Ok(_) => rendered += 1,
                Err(e) => {
                    assert!(
                        matches!(
                            e.kind(),
                            ErrorKind::LimitExceeded | ErrorKind::InvalidArgument
                        ),
                        "case {case}: {body}: {e}"
                    );
                    refused += 1;
                }
            }
        }
        eprintln!("{cases} generated templates: {rendered} rendered, {refused} refused");
        assert!(
            refused > cases / 10 && rendered > cases / 10,
            "{rendered} / {refused}"
        );
    }

    #[test]
    fn the_issue_template_is_a_memory_limit() {
        let t = "{% set a='x'*100000000 %}{% set b=a~a %}{% set c=b~b %}{% set d=c~c %}{% set e=d~d %}{{ e|length }}";
        let e = render_test(t, &json!({}), false).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::LimitExceeded, "{e}");
        assert!(e.message().contains("test.memory"), "{e}");
    }
}
