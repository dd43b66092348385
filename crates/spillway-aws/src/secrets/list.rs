//! ListSecrets as Secrets Manager documents it: `Filters` (name and tag prefixes case-sensitive,
//! description and `all` not; `!` negates a value), `SortBy`/`SortOrder`, and pages of
//! `MaxResults` (1-100) continued by an opaque `NextToken`.
//!
//! Within one filter, a secret must match one of the plain values and none of the negated ones;
//! every filter must hold. spillway secrets have no tags, primary region or owning service, so
//! a plain value of those keys matches nothing and a negated one everything.

use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::store::Secret;
use crate::error::AwsError;

/// AWS's page size when `MaxResults` is not given.
const DEFAULT_PAGE: usize = 100;

fn invalid_param(m: impl Into<String>) -> AwsError {
    AwsError::new(400, "InvalidParameterException", m)
}

fn bad_token() -> AwsError {
    AwsError::new(
        400,
        "InvalidNextTokenException",
        "The NextToken value is invalid.",
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FilterKey {
    Description,
    Name,
    TagKey,
    TagValue,
    PrimaryRegion,
    OwningService,
    All,
}

impl FilterKey {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "description" => Self::Description,
            "name" => Self::Name,
            "tag-key" => Self::TagKey,
            "tag-value" => Self::TagValue,
            "primary-region" => Self::PrimaryRegion,
            "owning-service" => Self::OwningService,
            "all" => Self::All,
            _ => return None,
        })
    }
}

#[derive(Debug)]
struct Filter {
    key: FilterKey,
    /// (negated, value)
    values: Vec<(bool, String)>,
}

/// `FilterValueStringType`'s pattern: `^\!?[a-zA-Z0-9 :_@\/\+\=\.\-\!]*$`, at most 512.
fn valid_value(v: &str) -> bool {
    v.len() <= 512
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || " :_@/+=.-!".contains(c))
}

fn parse_filters(v: Option<&Value>) -> Result<Vec<Filter>, AwsError> {
    let list = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(_) => {
            return Err(AwsError::new(
                400,
                "SerializationException",
                "Filters must be a list",
            ));
        }
    };
    if list.len() > 10 {
        return Err(invalid_param("You can specify at most 10 filters."));
    }
    list.iter()
        .map(|f| {
            let key = f
                .get("Key")
                .and_then(Value::as_str)
                .and_then(FilterKey::parse)
                .ok_or_else(|| {
                    invalid_param("Invalid filter key. Valid keys: description, name, tag-key, tag-value, primary-region, owning-service, all.")
                })?;
            let values = f
                .get("Values")
                .and_then(Value::as_array)
                .filter(|v| (1..=10).contains(&v.len()))
                .ok_or_else(|| invalid_param("Each filter needs 1 to 10 values."))?;
            let values = values
                .iter()
                .map(|v| {
                    let s = v
                        .as_str()
                        .filter(|s| valid_value(s))
                        .ok_or_else(|| invalid_param("Invalid filter value."))?;
                    Ok(match s.strip_prefix('!') {
                        Some(rest) => (true, rest.to_owned()),
                        None => (false, s.to_owned()),
                    })
                })
                .collect::<Result<Vec<_>, AwsError>>()?;
            Ok(Filter { key, values })
        })
        .collect()
}

/// Words of an attribute, for `all`: split where a name or description separates them.
fn words(s: &str) -> impl Iterator<Item = String> + '_ {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// Whether `value` (not negated) matches the secret under `key`.
fn matches(key: FilterKey, value: &str, s: &Secret) -> bool {
    match key {
        FilterKey::Name => s.name.starts_with(value),
        FilterKey::Description => s
            .description
            .as_deref()
            .is_some_and(|d| d.to_lowercase().starts_with(&value.to_lowercase())),
        FilterKey::TagKey
        | FilterKey::TagValue
        | FilterKey::PrimaryRegion
        | FilterKey::OwningService => false,
        FilterKey::All => {
            let attrs: Vec<String> = words(&s.name)
                .chain(s.description.as_deref().into_iter().flat_map(words))
                .collect();
            let mut wanted = words(value).peekable();
            wanted.peek().is_some() && wanted.all(|w| attrs.iter().any(|a| a.starts_with(&w)))
        }
    }
}

fn keep(filters: &[Filter], s: &Secret) -> bool {
    filters.iter().all(|f| {
        let plain: Vec<&str> = f
            .values
            .iter()
            .filter(|(neg, _)| !neg)
            .map(|(_, v)| v.as_str())
            .collect();
        let any_plain = plain.is_empty() || plain.iter().any(|v| matches(f.key, v, s));
        let no_negated = f
            .values
            .iter()
            .filter(|(neg, _)| *neg)
            .all(|(_, v)| !matches(f.key, v, s));
        any_plain && no_negated
    })
}

#[derive(Clone, Copy)]
enum SortBy {
    Created,
    LastAccessed,
    LastChanged,
    Name,
}

/// A token names the offset of the next page and the request it belongs to, so a token used
/// with other filters or another order is refused rather than silently skipping secrets.
fn token(offset: usize, fingerprint: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{offset}:{fingerprint}"))
}

fn offset_of(t: &str, fingerprint: &str) -> Result<usize, AwsError> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(t)
        .map_err(|_| bad_token())?;
    let raw = String::from_utf8(raw).map_err(|_| bad_token())?;
    let (offset, fp) = raw.split_once(':').ok_or_else(bad_token)?;
    if fp != fingerprint {
        return Err(bad_token());
    }
    offset.parse().map_err(|_| bad_token())
}

/// The ListSecrets answer for `input` over `secrets`, each described by `entry`.
pub fn list<'a>(
    input: &serde_json::Map<String, Value>,
    secrets: impl Iterator<Item = &'a Secret>,
    entry: impl Fn(&Secret) -> Value,
) -> Result<Value, AwsError> {
    let include_deleted = match input.get("IncludePlannedDeletion") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(AwsError::new(
                400,
                "SerializationException",
                "IncludePlannedDeletion must be a boolean",
            ));
        }
    };
    let page = match input.get("MaxResults") {
        None | Some(Value::Null) => DEFAULT_PAGE,
        Some(v) => match v.as_u64() {
            Some(n @ 1..=100) => n as usize,
            _ => {
                return Err(invalid_param(
                    "MaxResults must be an integer from 1 to 100.",
                ));
            }
        },
    };
    let str_of = |k: &str| match input.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(AwsError::new(
            400,
            "SerializationException",
            format!("{k} must be a string"),
        )),
    };
    let sort_by = match str_of("SortBy")? {
        None | Some("created-date") => SortBy::Created,
        Some("last-accessed-date") => SortBy::LastAccessed,
        Some("last-changed-date") => SortBy::LastChanged,
        Some("name") => SortBy::Name,
        Some(_) => return Err(invalid_param("Invalid SortBy value.")),
    };
    let descending = match str_of("SortOrder")? {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => return Err(invalid_param("SortOrder must be asc or desc.")),
    };
    let filters = parse_filters(input.get("Filters"))?;
    let fingerprint = {
        let request = json!([
            input.get("Filters"),
            input.get("SortBy"),
            input.get("SortOrder"),
            include_deleted
        ]);
        let digest = Sha256::digest(request.to_string().as_bytes());
        digest[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let start = match str_of("NextToken")? {
        Some(t) => offset_of(t, &fingerprint)?,
        None => 0,
    };
    let mut found: Vec<&Secret> = secrets
        .filter(|s| include_deleted || s.deletion.is_none())
        .filter(|s| keep(&filters, s))
        .collect();
    // Names are unique, so ties on a date still give one order across pages.
    found.sort_by(|a, b| {
        let by = |s: &Secret| match sort_by {
            SortBy::Created => s.created,
            SortBy::LastAccessed => s.accessed.unwrap_or(0.0),
            SortBy::LastChanged => s.changed,
            SortBy::Name => 0.0,
        };
        by(a).total_cmp(&by(b)).then_with(|| a.name.cmp(&b.name))
    });
    if descending {
        found.reverse();
    }
    let list: Vec<Value> = found
        .iter()
        .skip(start)
        .take(page)
        .map(|s| entry(s))
        .collect();
    let mut out = json!({ "SecretList": list });
    if start.saturating_add(page) < found.len() {
        out["NextToken"] = json!(token(start + page, &fingerprint));
    }
    Ok(out)
}
