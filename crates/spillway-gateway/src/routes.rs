//! Route keys and API Gateway's matching priority. AWS documents it for HTTP APIs as: a full
//! match of route and method first, then a match with a greedy path variable (`{proxy+}`), then
//! `$default`; among partial matches the most specific path wins (a literal segment over a
//! `{param}` over a `{proxy+}`), and a route with the request's method over `ANY`. REST APIs
//! resolve resources the same way.

use percent_encoding::percent_decode_str;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    Greedy(String),
}

impl Segment {
    /// Specificity of one position: a literal beats a parameter beats a greedy variable.
    fn rank(&self) -> u8 {
        match self {
            Segment::Literal(_) => 2,
            Segment::Param(_) => 1,
            Segment::Greedy(_) => 0,
        }
    }
}

#[derive(Clone, Debug)]
struct Pattern {
    /// `None` for `ANY`.
    method: Option<String>,
    segments: Vec<Segment>,
    index: usize,
}

/// A route key that is not `METHOD /path` or `$default`. The stack file's validation catches
/// these first; the router checks again so that it never relies on it.
#[derive(Debug, thiserror::Error)]
#[error("bad route key {0:?}")]
pub struct BadRouteKey(pub String);

/// The routes of one API, ready to match requests.
#[derive(Clone, Debug, Default)]
pub struct Router {
    patterns: Vec<Pattern>,
    default: Option<usize>,
}

/// The route a request matched, with its path parameters (decoded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Matched {
    pub index: usize,
    pub params: Vec<(String, String)>,
}

/// The segments of a request path (`/a/b` → `["a", "b"]`, `/` → `[]`). A trailing slash is an
/// empty last segment, so `/users/` does not match `GET /users`.
pub fn path_segments(path: &str) -> Vec<&str> {
    match path.strip_prefix('/') {
        Some("") | None => Vec::new(),
        Some(rest) => rest.split('/').collect(),
    }
}

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

fn parse(key: &str, index: usize) -> Result<Pattern, BadRouteKey> {
    let bad = || BadRouteKey(key.to_owned());
    let (method, path) = key.split_once(' ').ok_or_else(bad)?;
    if !path.starts_with('/') {
        return Err(bad());
    }
    let mut segments = Vec::new();
    let parts = path_segments(path);
    for (i, s) in parts.iter().enumerate() {
        let seg = match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(inner) => match inner.strip_suffix('+') {
                Some(name) if i + 1 == parts.len() => Segment::Greedy(name.to_owned()),
                Some(_) => return Err(bad()),
                None => Segment::Param(inner.to_owned()),
            },
            None => Segment::Literal((*s).to_owned()),
        };
        segments.push(seg);
    }
    Ok(Pattern {
        method: (method != "ANY").then(|| method.to_owned()),
        segments,
        index,
    })
}

impl Router {
    /// Builds the router from route keys in declaration order (the index is a route's position).
    pub fn new<'a>(keys: impl IntoIterator<Item = &'a str>) -> Result<Self, BadRouteKey> {
        let mut r = Router::default();
        for (i, key) in keys.into_iter().enumerate() {
            if key == "$default" {
                r.default = Some(i);
            } else {
                r.patterns.push(parse(key, i)?);
            }
        }
        Ok(r)
    }

    /// The best route for `method` and `path` (the path within the stage, still
    /// percent-encoded), or `$default`, or nothing.
    pub fn find(&self, method: &str, path: &str) -> Option<Matched> {
        let request = path_segments(path);
        // (specificity by segment, method given rather than ANY, the route, its parameters)
        type Candidate<'p> = (Vec<u8>, bool, &'p Pattern, Vec<(String, String)>);
        let mut best: Option<Candidate<'_>> = None;
        for p in &self.patterns {
            if p.method.as_deref().is_some_and(|m| m != method) {
                continue;
            }
            let Some(params) = match_segments(&p.segments, &request) else {
                continue;
            };
            let rank: Vec<u8> = p.segments.iter().map(Segment::rank).collect();
            let exact_method = p.method.is_some();
            let better = match &best {
                None => true,
                Some((r, m, _, _)) => (&rank, exact_method) > (r, *m),
            };
            if better {
                best = Some((rank, exact_method, p, params));
            }
        }
        match best {
            Some((_, _, p, params)) => Some(Matched {
                index: p.index,
                params,
            }),
            None => self.default.map(|index| Matched {
                index,
                params: Vec::new(),
            }),
        }
    }

    /// Whether some route other than `$default` has this path with any method (REST APIs tell
    /// a missing method from a missing resource only in logs; CORS preflight uses it).
    pub fn has_path(&self, path: &str) -> bool {
        let request = path_segments(path);
        self.patterns
            .iter()
            .any(|p| match_segments(&p.segments, &request).is_some())
    }
}

fn match_segments(pattern: &[Segment], request: &[&str]) -> Option<Vec<(String, String)>> {
    let mut params = Vec::new();
    for (i, seg) in pattern.iter().enumerate() {
        match seg {
            Segment::Greedy(name) => {
                // `{proxy+}` takes one segment or more, never none.
                let rest = request.get(i..).filter(|r| !r.is_empty())?;
                let value: Vec<String> = rest.iter().map(|s| decode(s)).collect();
                params.push((name.clone(), value.join("/")));
                return Some(params);
            }
            Segment::Literal(l) => {
                let got = request.get(i)?;
                if *got != l && decode(got) != *l {
                    return None;
                }
            }
            Segment::Param(name) => {
                let got = request.get(i)?;
                if got.is_empty() {
                    return None;
                }
                params.push((name.clone(), decode(got)));
            }
        }
    }
    (request.len() == pattern.len()).then_some(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(keys: &[&str]) -> Router {
        Router::new(keys.iter().copied()).unwrap_or_else(|e| panic!("{e}"))
    }

    fn hit(r: &Router, method: &str, path: &str) -> Option<usize> {
        r.find(method, path).map(|m| m.index)
    }

    #[test]
    fn literal_beats_parameter_beats_greedy_and_default_comes_last() {
        let r = router(&[
            "$default",
            "ANY /{proxy+}",
            "GET /pets/{id}",
            "GET /pets/dog",
            "GET /pets",
        ]);
        assert_eq!(hit(&r, "GET", "/pets/dog"), Some(3));
        assert_eq!(hit(&r, "GET", "/pets/cat"), Some(2));
        assert_eq!(hit(&r, "GET", "/pets"), Some(4));
        assert_eq!(hit(&r, "POST", "/pets"), Some(1));
        assert_eq!(hit(&r, "GET", "/pets/cat/toys"), Some(1));
        // {proxy+} needs at least one segment.
        assert_eq!(hit(&r, "GET", "/"), Some(0));
    }

    #[test]
    fn exact_method_beats_any_at_the_same_path() {
        let r = router(&["ANY /pets", "GET /pets"]);
        assert_eq!(hit(&r, "GET", "/pets"), Some(1));
        assert_eq!(hit(&r, "DELETE", "/pets"), Some(0));
        assert_eq!(hit(&r, "GET", "/pets/"), None);
    }

    #[test]
    fn parameters_are_decoded_and_greedy_joins_the_rest() {
        let r = router(&["GET /users/{id}", "GET /files/{path+}"]);
        let m = r
            .find("GET", "/users/a%20b")
            .unwrap_or_else(|| panic!("match"));
        assert_eq!(m.params, vec![("id".into(), "a b".into())]);
        let m = r
            .find("GET", "/files/a/b%2Fc/d")
            .unwrap_or_else(|| panic!("match"));
        assert_eq!(m.params, vec![("path".into(), "a/b/c/d".into())]);
        assert_eq!(hit(&r, "GET", "/users/"), None);
        assert_eq!(hit(&r, "GET", "/users"), None);
    }

    #[test]
    fn the_root_route_matches_only_the_root() {
        let r = router(&["GET /", "GET /users"]);
        assert_eq!(hit(&r, "GET", "/"), Some(0));
        assert_eq!(hit(&r, "GET", "/users"), Some(1));
        assert_eq!(hit(&r, "GET", "/nothing"), None);
        assert!(r.has_path("/users"));
        assert!(!r.has_path("/nothing"));
    }

    #[test]
    fn bad_keys_are_refused() {
        assert!(Router::new(["GET users"]).is_err());
        assert!(Router::new(["GET /{a+}/b"]).is_err());
        assert!(Router::new(["/x"]).is_err());
    }
}
