//! JSON Schemas as the constraint engine receives them: the user's schema with keywords the
//! engine does not implement rewritten into ones it does, where the rewrite only ever narrows what
//! is accepted (every output still validates against the user's schema), numbers bounded, and
//! our compile options.
//!
//! - `not` of a type (or of a schema with a `type`) becomes the other types; `not: {}` (nothing
//!   valid) becomes `false`.
//! - `uniqueItems: true` becomes `maxItems: 1` (one item is always unique) when `minItems`
//!   allows it.
//! - `dependencies`: a dependent property that is required brings its dependencies into
//!   `required` (or its schema into `allOf`); one that is not required is left out of the output.
//! - A schema that is just a `$ref` to the draft-04 meta-schema is the meta-schema itself.
//!
//! Anything else the engine does not implement is refused by it, naming the keyword.

use serde_json::{json, Map, Value};

const TYPES: [&str; 7] = [
    "array", "boolean", "integer", "null", "number", "object", "string",
];
const DRAFT4: &str = "http://json-schema.org/draft-04/schema#";

/// The schema to compile.
pub(crate) fn prepare(schema: &Value) -> Value {
    let mut schema = resolve_metaschema(schema);
    rewrite(&mut schema);
    bound_numbers(&mut schema);
    if let Value::Object(map) = &mut schema {
        map.insert(
            "x-guidance".into(),
            json!({ "whitespace_flexible": false, "lenient": false }),
        );
    }
    schema
}

fn resolve_metaschema(schema: &Value) -> Value {
    let is_ref = schema.as_object().is_some_and(|m| {
        m.get("$ref").and_then(Value::as_str) == Some(DRAFT4)
            && m.keys().all(|k| k == "$ref" || k == "$schema")
    });
    if !is_ref {
        return schema.clone();
    }
    let mut meta: Value = serde_json::from_str(include_str!("draft4_metaschema.json"))
        .expect("the bundled meta-schema parses");
    if let Value::Object(map) = &mut meta {
        map.remove("id");
        map.remove("$schema");
        // The engine knows no `regex` format: the meta-schema's `pattern` keyword is left out of
        // the output (narrower, so the output still validates).
        if let Some(Value::Object(properties)) = map.get_mut("properties") {
            properties.insert("pattern".into(), Value::Bool(false));
        }
    }
    meta
}

fn types_of(value: Option<&Value>) -> Option<Vec<String>> {
    match value? {
        Value::String(t) => Some(vec![t.clone()]),
        Value::Array(ts) => Some(
            ts.iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect(),
        ),
        _ => None,
    }
}

/// The types outside `excluded` (an integer-only exclusion drops numbers too: the engine cannot
/// say "a number that is not an integer").
fn other_types(excluded: &[String]) -> Vec<String> {
    let out = |t: &str| excluded.iter().any(|e| e == t);
    TYPES
        .iter()
        .filter(|t| {
            let number_excluded =
                (**t == "number" && out("integer")) || (**t == "integer" && out("number"));
            !out(t) && !number_excluded
        })
        .map(|t| t.to_string())
        .collect()
}

/// `not` → the types the negated schema cannot match (or `false`); `None` when no rewrite is
/// known.
fn rewrite_not(map: &mut Map<String, Value>) -> Option<()> {
    let negated = map.get("not")?;
    if negated.as_object().is_some_and(Map::is_empty) {
        map.clear();
        map.insert("not".into(), json!({}));
        return None;
    }
    let excluded = types_of(negated.get("type"))?;
    let mut allowed = other_types(&excluded);
    if let Some(own) = types_of(map.get("type")) {
        allowed
            .retain(|t| own.contains(t) || (t == "integer" && own.iter().any(|o| o == "number")));
    }
    map.remove("not");
    map.insert("type".into(), json!(allowed));
    Some(())
}

fn rewrite_unique_items(map: &mut Map<String, Value>) {
    match map.get("uniqueItems") {
        Some(Value::Bool(false)) => {
            map.remove("uniqueItems");
        }
        Some(Value::Bool(true))
            if map.get("minItems").and_then(Value::as_u64).unwrap_or(0) <= 1 =>
        {
            map.remove("uniqueItems");
            let max = map
                .get("maxItems")
                .and_then(Value::as_u64)
                .unwrap_or(1)
                .min(1);
            map.insert("maxItems".into(), json!(max));
        }
        _ => {}
    }
}

fn rewrite_dependencies(map: &mut Map<String, Value>) {
    let Some(Value::Object(dependencies)) = map.remove("dependencies") else {
        return;
    };
    let required: Vec<String> = map
        .get("required")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    for (key, dependency) in dependencies {
        if !required.contains(&key) {
            let properties = map.entry("properties").or_insert_with(|| json!({}));
            if let Value::Object(properties) = properties {
                properties.insert(key, Value::Bool(false));
            }
            continue;
        }
        match dependency {
            Value::Array(names) => {
                let list = map.entry("required").or_insert_with(|| json!([]));
                if let Value::Array(list) = list {
                    for name in names {
                        if !list.contains(&name) {
                            list.push(name);
                        }
                    }
                }
            }
            schema => {
                let all = map.entry("allOf").or_insert_with(|| json!([]));
                if let Value::Array(all) = all {
                    all.push(schema);
                }
            }
        }
    }
}

/// Applies the rewrites to `schema` and every schema inside it.
fn rewrite(schema: &mut Value) {
    let Value::Object(map) = schema else {
        return;
    };
    if map.contains_key("not") && rewrite_not(map).is_none() && map.get("not") == Some(&json!({})) {
        *schema = Value::Bool(false);
        return;
    }
    rewrite_unique_items(map);
    rewrite_dependencies(map);
    for key in ["properties", "patternProperties", "definitions"] {
        if let Some(Value::Object(schemas)) = map.get_mut(key) {
            schemas.values_mut().for_each(rewrite);
        }
    }
    for key in [
        "items",
        "additionalItems",
        "additionalProperties",
        "not",
        "allOf",
        "anyOf",
        "oneOf",
    ] {
        match map.get_mut(key) {
            Some(Value::Array(schemas)) => schemas.iter_mut().for_each(rewrite),
            Some(schema) => rewrite(schema),
            None => {}
        }
    }
}

/// Keywords whose values are data, not schemas.
const DATA_KEYWORDS: [&str; 4] = ["const", "enum", "default", "examples"];

/// Gives every number and integer without bounds the bounds JSON parsers can hold: integers
/// within ±(2^53 - 1) (I-JSON), numbers within ±1e15 (the widest float range the engine
/// turns into a grammar). The grammar of an unbounded number has
/// no end: a small model can write digits until the budget runs out, and a 200-digit exponent is
/// valid JSON that no parser reads. The output still validates against the user's schema.
fn bound_numbers(schema: &mut Value) {
    let Value::Object(map) = schema else {
        if let Value::Array(items) = schema {
            items.iter_mut().for_each(bound_numbers);
        }
        return;
    };
    let is = |t: &str| match map.get("type") {
        Some(Value::String(s)) => s == t,
        Some(Value::Array(types)) => types.iter().any(|v| v == t),
        _ => false,
    };
    let bounded = ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"]
        .iter()
        .any(|k| map.contains_key(*k));
    let limit = if is("integer") {
        Some(Value::from(9_007_199_254_740_991_i64))
    } else if is("number") {
        Some(Value::from(1e15))
    } else {
        None
    };
    if let (Some(limit), false) = (limit, bounded) {
        let negative = match &limit {
            Value::Number(n) if n.is_i64() => Value::from(-n.as_i64().unwrap_or(0)),
            _ => Value::from(-1e15),
        };
        map.insert("maximum".into(), limit);
        map.insert("minimum".into(), negative);
    }
    for (key, value) in map.iter_mut() {
        if !DATA_KEYWORDS.contains(&key.as_str()) {
            bound_numbers(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prepared(schema: Value) -> Value {
        let mut v = prepare(&schema);
        v.as_object_mut().map(|m| m.remove("x-guidance"));
        v
    }

    #[test]
    fn rewrites_only_narrow() {
        assert_eq!(
            prepared(json!({"not": {"type": "integer"}})),
            json!({"type": ["array", "boolean", "null", "object", "string"]})
        );
        assert_eq!(
            prepared(json!({"properties": {"foo": {"not": {}}}})),
            json!({"properties": {"foo": false}})
        );
        assert_eq!(
            prepared(json!({"uniqueItems": true})),
            json!({"maxItems": 1})
        );
        assert_eq!(
            prepared(json!({"uniqueItems": true, "minItems": 2})),
            json!({"uniqueItems": true, "minItems": 2})
        );
        assert_eq!(
            prepared(json!({"dependencies": {"bar": ["foo"]}})),
            json!({"properties": {"bar": false}})
        );
        assert_eq!(
            prepared(json!({"required": ["bar"], "dependencies": {"bar": ["foo"]}})),
            json!({"required": ["bar", "foo"]})
        );
        assert!(prepared(json!({"$ref": DRAFT4}))
            .get("definitions")
            .is_some());
        // no rewrite known: left for the engine to refuse by name
        assert_eq!(
            prepared(json!({"not": {"minimum": 3}})),
            json!({"not": {"minimum": 3}})
        );
    }
}
