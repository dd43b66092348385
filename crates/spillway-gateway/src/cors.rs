//! CORS as HTTP APIs do it: the gateway answers preflight requests itself (whether or not an
//! OPTIONS route exists) and sets the CORS headers of every answer to a request from an allowed
//! origin, replacing whatever the backend sent.

use crate::request::GatewayRequest;
use crate::response::HttpReply;
use crate::spec::CorsSpec;

fn allows(list: &[String], value: &str) -> bool {
    list.iter()
        .any(|v| v == "*" || v.eq_ignore_ascii_case(value))
}

impl CorsSpec {
    /// The `access-control-allow-origin` value for `origin`, if it is allowed.
    fn allow_origin(&self, origin: &str) -> Option<String> {
        if self.allow_origins.iter().any(|o| o == origin) {
            Some(origin.to_owned())
        } else if self.allow_origins.iter().any(|o| o == "*") {
            // A wildcard with credentials is not allowed by browsers; echo the origin then.
            Some(if self.allow_credentials {
                origin.to_owned()
            } else {
                "*".to_owned()
            })
        } else {
            None
        }
    }

    /// Whether the request is a CORS preflight, which the gateway answers itself.
    pub fn is_preflight(req: &GatewayRequest) -> bool {
        req.method == "OPTIONS"
            && req.header("origin").is_some()
            && req.header("access-control-request-method").is_some()
    }

    /// A preflight request (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) gets
    /// its answer here: 204 with the allowed methods and headers, or 204 without CORS headers
    /// when the origin or method is not allowed (the browser then refuses the real request).
    pub fn preflight(&self, req: &GatewayRequest) -> Option<HttpReply> {
        if req.method != "OPTIONS" {
            return None;
        }
        let origin = req.header("origin")?;
        let method = req.header("access-control-request-method")?;
        let mut headers = Vec::new();
        if let Some(allow) = self.allow_origin(origin)
            && allows(&self.allow_methods, method)
        {
            headers.push(("access-control-allow-origin".into(), allow));
            let methods = if self.allow_methods.iter().any(|m| m == "*") {
                method.to_owned()
            } else {
                self.allow_methods.join(",")
            };
            headers.push(("access-control-allow-methods".into(), methods));
            let requested = req.header("access-control-request-headers").unwrap_or("");
            let allowed_headers = if self.allow_headers.iter().any(|h| h == "*") {
                requested.to_owned()
            } else {
                self.allow_headers.join(",")
            };
            if !allowed_headers.is_empty() {
                headers.push(("access-control-allow-headers".into(), allowed_headers));
            }
            if let Some(age) = self.max_age {
                headers.push(("access-control-max-age".into(), age.as_secs().to_string()));
            }
            if self.allow_credentials {
                headers.push(("access-control-allow-credentials".into(), "true".into()));
            }
        }
        Some(HttpReply {
            status: 204,
            headers,
            body: bytes::Bytes::new(),
        })
    }

    /// Replaces the backend's CORS headers with the API's for a request with an allowed origin.
    pub fn decorate(&self, req: &GatewayRequest, reply: &mut HttpReply) {
        let Some(origin) = req.header("origin") else {
            return;
        };
        reply
            .headers
            .retain(|(k, _)| !k.to_ascii_lowercase().starts_with("access-control-"));
        let Some(allow) = self.allow_origin(origin) else {
            return;
        };
        reply
            .headers
            .push(("access-control-allow-origin".into(), allow));
        if !self.expose_headers.is_empty() {
            reply.headers.push((
                "access-control-expose-headers".into(),
                self.expose_headers.join(","),
            ));
        }
        if self.allow_credentials {
            reply
                .headers
                .push(("access-control-allow-credentials".into(), "true".into()));
        }
        if !reply
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("vary"))
        {
            reply.headers.push(("vary".into(), "origin".into()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn req(method: &str, headers: &[(&str, &str)]) -> GatewayRequest {
        GatewayRequest {
            method: method.into(),
            raw_path: "/".into(),
            raw_query: String::new(),
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            body: Bytes::new(),
            source_ip: [127, 0, 0, 1].into(),
            protocol: "HTTP/1.1",
            request_id: "r".into(),
            time_ms: 0,
        }
    }

    fn cors() -> CorsSpec {
        CorsSpec {
            allow_origins: vec!["https://app.example".into()],
            allow_methods: vec!["GET".into(), "POST".into()],
            allow_headers: vec!["content-type".into(), "authorization".into()],
            expose_headers: vec!["x-total".into()],
            max_age: Some(std::time::Duration::from_secs(600)),
            allow_credentials: true,
        }
    }

    fn get<'a>(r: &'a HttpReply, name: &str) -> Option<&'a str> {
        r.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn preflight_from_an_allowed_origin() {
        let r = cors()
            .preflight(&req(
                "OPTIONS",
                &[
                    ("origin", "https://app.example"),
                    ("access-control-request-method", "POST"),
                ],
            ))
            .unwrap_or_else(|| panic!("a preflight"));
        assert_eq!(r.status, 204);
        assert_eq!(
            get(&r, "access-control-allow-origin"),
            Some("https://app.example")
        );
        assert_eq!(get(&r, "access-control-allow-methods"), Some("GET,POST"));
        assert_eq!(get(&r, "access-control-max-age"), Some("600"));
        assert_eq!(get(&r, "access-control-allow-credentials"), Some("true"));
    }

    #[test]
    fn preflight_from_another_origin_gets_no_cors_headers() {
        let r = cors()
            .preflight(&req(
                "OPTIONS",
                &[
                    ("origin", "https://evil.example"),
                    ("access-control-request-method", "POST"),
                ],
            ))
            .unwrap_or_else(|| panic!("a preflight"));
        assert!(r.headers.is_empty());
        assert!(cors().preflight(&req("OPTIONS", &[])).is_none());
    }

    #[test]
    fn backend_cors_headers_are_replaced() {
        let mut reply = HttpReply {
            status: 200,
            headers: vec![("Access-Control-Allow-Origin".into(), "*".into())],
            body: Bytes::new(),
        };
        cors().decorate(
            &req("GET", &[("origin", "https://app.example")]),
            &mut reply,
        );
        assert_eq!(
            get(&reply, "access-control-allow-origin"),
            Some("https://app.example")
        );
        assert!(
            !reply
                .headers
                .iter()
                .any(|(k, _)| k == "Access-Control-Allow-Origin")
        );
        assert_eq!(
            get(&reply, "access-control-expose-headers"),
            Some("x-total")
        );
    }
}
