//! Reading `steadytext_config`. Values are JSONB; `steadytext_config_set` stores what it is given
//! as a JSON string (as the Python extension did), so a number may arrive as `"64"`: readers
//! accept both.

use pgrx::JsonB;

fn value(key: &str) -> Option<serde_json::Value> {
    crate::privilege::as_owner(|| {
        crate::spi::read_one::<JsonB>(
            "SELECT c.value FROM public.steadytext_config c \
             WHERE c.key OPERATOR(pg_catalog.=) $1",
            key,
        )
    })
    .map(|j| j.0)
}

/// A boolean setting, whether stored as JSON true/false or as text.
pub fn bool(key: &str) -> Option<bool> {
    match value(key)? {
        serde_json::Value::Bool(b) => Some(b),
        serde_json::Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "t" | "1" | "yes" | "on" => Some(true),
            "false" | "f" | "0" | "no" | "off" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// An integer setting, whether stored as a JSON number or as a string of digits.
pub fn int(key: &str) -> Option<i64> {
    as_int(&value(key)?)
}

fn as_int(v: &serde_json::Value) -> Option<i64> {
    match v {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbers_as_text_are_numbers() {
        use serde_json::json;
        assert_eq!(super::as_int(&json!(64)), Some(64));
        assert_eq!(super::as_int(&json!("64")), Some(64));
        assert_eq!(super::as_int(&json!(" 7 ")), Some(7));
        assert_eq!(super::as_int(&json!("x")), None);
        assert_eq!(super::as_int(&json!(true)), None);
    }
}
