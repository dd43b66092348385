//! The tasks file: what each simulated user does, as weighted HTTP requests.
//!
//! ```toml
//! [[task]]
//! name = "proxy"
//! weight = 1
//! method = "GET"
//! path = "/proxy_stage/tenant"
//! query = { tenant = "0..199" }   # an inclusive integer range, drawn uniformly per request
//! expect = 200
//! group = "proxy"                 # `--compare proxy,no_proxy` splits results by group
//! ```
//!
//! Report 004's locustfile picks a random tenant and one of two endpoints with equal chance;
//! that is two tasks of equal weight with a tenant range each.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use rand::Rng;
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum TasksError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{path}: task {task:?}: {message}")]
    Task {
        path: String,
        task: String,
        message: String,
    },
    #[error("{path}: no [[task]] entries")]
    Empty { path: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TasksFile {
    #[serde(default, rename = "task")]
    tasks: Vec<TaskEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskEntry {
    name: String,
    #[serde(default = "one")]
    weight: u32,
    #[serde(default = "get")]
    method: String,
    path: String,
    #[serde(default)]
    query: BTreeMap<String, toml::Value>,
    #[serde(default = "ok")]
    expect: u16,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

fn one() -> u32 {
    1
}
fn get() -> String {
    "GET".into()
}
fn ok() -> u16 {
    200
}

/// One query parameter's value: fixed, or drawn from an inclusive range on every request.
#[derive(Clone, Debug, PartialEq)]
pub enum ParamValue {
    Fixed(String),
    Range(i64, i64),
}

impl ParamValue {
    /// "A..B" (or "A..=B") is a range; anything else is literal text.
    fn parse(v: &toml::Value) -> Result<Self, String> {
        match v {
            toml::Value::Integer(i) => Ok(Self::Fixed(i.to_string())),
            toml::Value::Boolean(b) => Ok(Self::Fixed(b.to_string())),
            toml::Value::Float(f) => Ok(Self::Fixed(f.to_string())),
            toml::Value::String(s) => Ok(match parse_range(s) {
                Some((lo, hi)) if lo <= hi => Self::Range(lo, hi),
                Some(_) => return Err(format!("range {s:?} is empty (start above end)")),
                None => Self::Fixed(s.clone()),
            }),
            _ => Err("query values are strings, numbers or booleans".into()),
        }
    }

    fn draw(&self, rng: &mut impl Rng) -> String {
        match self {
            Self::Fixed(s) => s.clone(),
            Self::Range(lo, hi) => rng.gen_range(*lo..=*hi).to_string(),
        }
    }
}

fn parse_range(s: &str) -> Option<(i64, i64)> {
    let (lo, hi) = s.split_once("..")?;
    let hi = hi.strip_prefix('=').unwrap_or(hi);
    Some((lo.trim().parse().ok()?, hi.trim().parse().ok()?))
}

/// One task, checked.
#[derive(Clone, Debug)]
pub struct Task {
    pub name: String,
    pub weight: u32,
    pub method: hyper::Method,
    pub path: String,
    pub query: Vec<(String, ParamValue)>,
    pub expect: u16,
    pub group: Option<String>,
    pub body: Option<String>,
    pub headers: Vec<(hyper::header::HeaderName, hyper::header::HeaderValue)>,
}

impl Task {
    /// The path and query of one request, with the ranges drawn.
    pub fn path_and_query(&self, rng: &mut impl Rng) -> String {
        let mut out = self.path.clone();
        for (i, (k, v)) in self.query.iter().enumerate() {
            out.push(if i == 0 && !self.path.contains('?') {
                '?'
            } else {
                '&'
            });
            encode_into(&mut out, k);
            out.push('=');
            encode_into(&mut out, &v.draw(rng));
        }
        out
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode_into(out: &mut String, s: &str) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// The tasks and their cumulative weights, for picking one per iteration.
#[derive(Clone, Debug)]
pub struct TaskSet {
    pub tasks: Vec<Task>,
    cumulative: Vec<u64>,
}

impl TaskSet {
    pub fn new(tasks: Vec<Task>) -> Self {
        let mut sum = 0;
        let cumulative = tasks
            .iter()
            .map(|t| {
                sum += u64::from(t.weight);
                sum
            })
            .collect();
        Self { tasks, cumulative }
    }

    /// Without a tasks file: one task, GET / expecting 200, as a trivial-route smoke run.
    pub fn default_root() -> Self {
        Self::new(vec![Task {
            name: "/".into(),
            weight: 1,
            method: hyper::Method::GET,
            path: "/".into(),
            query: Vec::new(),
            expect: 200,
            group: None,
            body: None,
            headers: Vec::new(),
        }])
    }

    pub fn load(path: &Path) -> Result<Self, TasksError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| TasksError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::parse(&text, &shown)
    }

    pub fn parse(text: &str, shown: &str) -> Result<Self, TasksError> {
        let file: TasksFile = toml::from_str(text).map_err(|e| TasksError::Parse {
            path: shown.into(),
            message: e.to_string(),
        })?;
        if file.tasks.is_empty() {
            return Err(TasksError::Empty { path: shown.into() });
        }
        let mut names = HashSet::new();
        let mut tasks = Vec::new();
        for t in file.tasks {
            let bad = |message: String| TasksError::Task {
                path: shown.into(),
                task: t.name.clone(),
                message,
            };
            if !names.insert(t.name.clone()) {
                return Err(bad("the name is used by another task".into()));
            }
            if t.weight == 0 {
                return Err(bad("weight must be at least 1".into()));
            }
            if !t.path.starts_with('/') {
                return Err(bad(format!("path {:?} must start with /", t.path)));
            }
            let method = hyper::Method::from_bytes(t.method.to_ascii_uppercase().as_bytes())
                .map_err(|_| bad(format!("{:?} is not an HTTP method", t.method)))?;
            if !(100..=599).contains(&t.expect) {
                return Err(bad(format!("expect {} is not an HTTP status", t.expect)));
            }
            let mut query = Vec::new();
            for (k, v) in &t.query {
                let v = ParamValue::parse(v).map_err(|m| bad(format!("query {k}: {m}")))?;
                query.push((k.clone(), v));
            }
            let mut headers = Vec::new();
            for (k, v) in &t.headers {
                let name = hyper::header::HeaderName::from_bytes(k.as_bytes())
                    .map_err(|_| bad(format!("{k:?} is not a header name")))?;
                let value = hyper::header::HeaderValue::from_str(v)
                    .map_err(|_| bad(format!("header {k}: not a valid value")))?;
                headers.push((name, value));
            }
            tasks.push(Task {
                name: t.name.clone(),
                weight: t.weight,
                method,
                path: t.path.clone(),
                query,
                expect: t.expect,
                group: t.group.clone(),
                body: t.body.clone(),
                headers,
            });
        }
        Ok(Self::new(tasks))
    }

    /// Picks a task with probability weight / total weight; returns its index.
    pub fn pick(&self, rng: &mut impl Rng) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(1).max(1);
        let x = rng.gen_range(0..total);
        self.cumulative.partition_point(|c| *c <= x)
    }

    /// The distinct groups, in first-seen order.
    pub fn groups(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for g in self.tasks.iter().filter_map(|t| t.group.clone()) {
            if !out.contains(&g) {
                out.push(g);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn ranges_and_literals() {
        let set = TaskSet::parse(
            "[[task]]\nname='a'\npath='/x'\nquery={tenant='3..3', mode='a b', n=5}\n",
            "t.toml",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        assert_eq!(
            set.tasks[0].path_and_query(&mut rng),
            "/x?mode=a%20b&n=5&tenant=3"
        );
    }

    #[test]
    fn refuses_bad_entries() {
        for bad in [
            "[[task]]\nname='a'\npath='x'\n",
            "[[task]]\nname='a'\npath='/x'\nweight=0\n",
            "[[task]]\nname='a'\npath='/x'\n[[task]]\nname='a'\npath='/y'\n",
            "[[task]]\nname='a'\npath='/x'\nquery={t='9..1'}\n",
            "[[task]]\nname='a'\npath='/x'\nbogus=1\n",
            "",
        ] {
            assert!(TaskSet::parse(bad, "t.toml").is_err(), "{bad}");
        }
    }
}
