//! Durations in the stack file are humantime strings ("30s", "15m", "1h 30m"), never bare
//! integers of unclear unit.

use std::fmt;
use std::time::Duration as StdDuration;

use schemars::JsonSchema;
use schemars::r#gen::SchemaGenerator;
use schemars::schema::{InstanceType, Schema, SchemaObject, StringValidation};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written as a humantime string such as `"30s"`, `"15m"` or `"4d"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub StdDuration);

impl Duration {
    pub const fn from_secs(secs: u64) -> Self {
        Self(StdDuration::from_secs(secs))
    }

    pub const fn get(self) -> StdDuration {
        self.0
    }

    pub fn as_secs(self) -> u64 {
        self.0.as_secs()
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

struct DurationVisitor;

/// The one phrase every duration error uses, so users see the same expectation everywhere.
pub const EXPECTED_DURATION: &str = "a duration like \"30s\"";

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(EXPECTED_DURATION)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        humantime::parse_duration(v.trim())
            .map(Duration)
            .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(DurationVisitor)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> String {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        SchemaObject {
            instance_type: Some(InstanceType::String.into()),
            string: Some(Box::new(StringValidation {
                pattern: Some(r"^\s*([0-9]+\s*[a-zA-Z]+\s*)+$".into()),
                ..Default::default()
            })),
            metadata: Some(Box::new(schemars::schema::Metadata {
                description: Some("A duration such as \"500ms\", \"30s\", \"15m\", \"4d\".".into()),
                examples: vec!["30s".into(), "15m".into()],
                ..Default::default()
            })),
            ..Default::default()
        }
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Holder {
        d: Duration,
    }

    #[test]
    fn parses_humantime_strings() {
        let h: Holder = toml::from_str("d = \"1m 30s\"").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(h.d.as_secs(), 90);
    }

    #[test]
    fn rejects_integers_and_garbage_with_the_expectation() {
        for src in ["d = 30", "d = \"thirty\""] {
            let err = toml::from_str::<Holder>(src).err().map(|e| e.to_string());
            let err = err.unwrap_or_default();
            assert!(err.contains(EXPECTED_DURATION), "{src}: {err}");
        }
    }
}
