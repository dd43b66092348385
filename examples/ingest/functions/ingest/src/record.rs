//! What a submitted record must look like before it becomes a `users` row: the report's
//! `{"name": "...", "email": "..."}`, both text that fits the table's VARCHAR(255). The Node.js
//! handler applies the same rules (`functions/ingest-node/index.mjs`).

use serde_json::Value;

/// The widest value the report's `VARCHAR(255)` columns hold, in characters.
const MAX_CHARS: usize = 255;

/// A record ready to insert.
#[derive(Debug, PartialEq, Eq)]
pub struct NewUser {
    pub name: String,
    pub email: String,
}

/// Why a record was refused; logged, and the message goes back to the queue as a failed
/// batch item until it ends in the dead-letter queue.
pub fn parse(body: &str) -> Result<NewUser, String> {
    let value: Value =
        serde_json::from_str(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let text = |key: &str| -> Result<String, String> {
        let s = value
            .get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .ok_or_else(|| format!("`{key}` is missing or not a string"))?;
        if s.is_empty() {
            return Err(format!("`{key}` is empty"));
        }
        if s.chars().count() > MAX_CHARS {
            return Err(format!("`{key}` is longer than {MAX_CHARS} characters"));
        }
        Ok(s.to_owned())
    };
    let name = text("name")?;
    let email = text("email")?;
    if !looks_like_email(&email) {
        return Err(format!("`email` is not an address: {email:?}"));
    }
    Ok(NewUser { name, email })
}

/// One `@` with something on both sides, a dot in the domain, no spaces: enough to refuse
/// typing mistakes without claiming to check deliverability.
fn looks_like_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && !s.chars().any(char::is_whitespace)
        && domain
            .split_once('.')
            .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty() && !b.ends_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reports_record_passes_and_mistakes_do_not() {
        assert_eq!(
            parse(r#"{"name": "田中太郎", "email": "tanaka@example.com"}"#),
            Ok(NewUser {
                name: "田中太郎".into(),
                email: "tanaka@example.com".into()
            })
        );
        for bad in [
            "not json",
            "[]",
            r#"{"name": "a"}"#,
            r#"{"name": " ", "email": "a@b.c"}"#,
            r#"{"name": "a", "email": "a.b.c"}"#,
            r#"{"name": "a", "email": "a@b"}"#,
            r#"{"name": "a", "email": "a b@c.d"}"#,
            r#"{"name": 7, "email": "a@b.c"}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let long = "x".repeat(256);
        assert!(parse(&format!(r#"{{"name": "{long}", "email": "a@b.c"}}"#)).is_err());
    }
}
