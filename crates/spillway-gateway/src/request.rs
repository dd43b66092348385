//! A request as the gateway sees it once the body is read: what event builders, authorizers,
//! CORS and access logs all look at.

use std::net::IpAddr;

use bytes::Bytes;
use percent_encoding::percent_decode_str;

use crate::spec::ApiKind;

#[derive(Clone, Debug)]
pub struct GatewayRequest {
    pub method: String,
    /// The path as received, still percent-encoded, stage prefix included.
    pub raw_path: String,
    /// The query string as received (without `?`).
    pub raw_query: String,
    /// Header names lower-cased (HTTP/2 sends them so; HTTP/1 names are case-insensitive), in
    /// the order received, repeated names kept.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub source_ip: IpAddr,
    /// `HTTP/1.1` or `HTTP/2.0`.
    pub protocol: &'static str,
    pub request_id: String,
    /// When the request arrived, Unix milliseconds.
    pub time_ms: i64,
}

impl GatewayRequest {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header, comma-joined as API Gateway joins duplicates.
    pub fn header_joined(&self, name: &str) -> Option<String> {
        let values: Vec<&str> = self
            .headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect();
        (!values.is_empty()).then(|| values.join(","))
    }

    /// The `Host` header, or HTTP/2's `:authority` (which hyper hands over as the URI's).
    pub fn host(&self) -> &str {
        self.header("host").unwrap_or("localhost")
    }

    pub fn user_agent(&self) -> &str {
        self.header("user-agent").unwrap_or("")
    }

    /// Cookies of every `Cookie` header, split on `;` (the 2.0 event's `cookies`).
    pub fn cookies(&self) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k == "cookie")
            .flat_map(|(_, v)| v.split(';'))
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Query parameters, decoded, in order, repeated names kept. `+` is left as it is: API
    /// Gateway decodes only percent escapes.
    pub fn query(&self) -> Vec<(String, String)> {
        self.raw_query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (decode(k), decode(v))
            })
            .collect()
    }

    /// Every value of a query parameter, comma-joined (as identity sources and parameter
    /// mappings read `$request.querystring.NAME`).
    pub fn query_joined(&self, name: &str) -> Option<String> {
        let values: Vec<String> = self
            .query()
            .into_iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v)
            .collect();
        (!values.is_empty()).then(|| values.join(","))
    }

    /// The body is passed to a function as text unless it is binary: for HTTP APIs, a body
    /// whose content type is not a text type (or that is not UTF-8) is base64-encoded; for
    /// REST APIs, only bodies of the API's binary media types are.
    pub fn body_is_binary(&self, kind: ApiKind, binary_media_types: &[String]) -> bool {
        if std::str::from_utf8(&self.body).is_err() {
            return true;
        }
        let ct = self
            .header("content-type")
            .map(|c| {
                c.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .unwrap_or_default();
        match kind {
            ApiKind::Http => !(ct.is_empty() || is_text_type(&ct)),
            ApiKind::Rest => binary_media_types
                .iter()
                .any(|t| media_type_matches(t, &ct)),
        }
    }
}

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// Content types API Gateway's HTTP APIs pass to functions as text.
fn is_text_type(ct: &str) -> bool {
    ct.starts_with("text/")
        || ct.ends_with("json")
        || ct.ends_with("+xml")
        || matches!(
            ct,
            "application/xml" | "application/javascript" | "application/ecmascript"
        )
}

/// `image/*` and `*/*` patterns as binaryMediaTypes takes them.
fn media_type_matches(pattern: &str, ct: &str) -> bool {
    let pattern = pattern.to_ascii_lowercase();
    match pattern.strip_suffix("/*") {
        Some("*") => !ct.is_empty(),
        Some(prefix) => ct.split('/').next() == Some(prefix),
        None => pattern == ct,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)], query: &str, body: &'static [u8]) -> GatewayRequest {
        GatewayRequest {
            method: "POST".into(),
            raw_path: "/".into(),
            raw_query: query.into(),
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body: Bytes::from_static(body),
            source_ip: IpAddr::from([127, 0, 0, 1]),
            protocol: "HTTP/1.1",
            request_id: "id".into(),
            time_ms: 0,
        }
    }

    #[test]
    fn query_keeps_duplicates_and_decodes_escapes_only() {
        let r = req(&[], "a=1&a=2&b=x%20y+z&c", b"");
        assert_eq!(
            r.query(),
            vec![
                ("a".into(), "1".into()),
                ("a".into(), "2".into()),
                ("b".into(), "x y+z".into()),
                ("c".into(), String::new()),
            ]
        );
    }

    #[test]
    fn cookies_from_every_cookie_header() {
        let r = req(&[("cookie", "a=1; b=2"), ("cookie", "c=3")], "", b"");
        assert_eq!(r.cookies(), vec!["a=1", "b=2", "c=3"]);
    }

    #[test]
    fn binary_bodies() {
        let json = req(
            &[("content-type", "application/json; charset=utf-8")],
            "",
            b"{}",
        );
        assert!(!json.body_is_binary(ApiKind::Http, &[]));
        let form = req(
            &[("content-type", "application/x-www-form-urlencoded")],
            "",
            b"a=1",
        );
        assert!(form.body_is_binary(ApiKind::Http, &[]));
        assert!(!form.body_is_binary(ApiKind::Rest, &[]));
        let png = req(&[("content-type", "image/png")], "", b"\x89PNG");
        assert!(png.body_is_binary(ApiKind::Rest, &["image/*".into()]));
        let text = req(&[("content-type", "image/png")], "", b"ok");
        assert!(!text.body_is_binary(ApiKind::Rest, &["image/jpeg".into()]));
    }
}
