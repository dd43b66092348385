//! The stack's APIs: `[apis.*]` turned into gateway specs (references resolved, JWKS and
//! certificate files read), each served on its own listener.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use spillway_gateway::spec::{
    AccessLogSpec, ApiKeySpec, ApiKind, ApiSpec, AuthorizerSpec, CorsSpec, DomainMapping,
    Integration, LogDestination, PayloadFormat, QuotaPeriod, Rate, RouteAuth, RouteSpec, StageSpec,
};
use spillway_gateway::{Gateway, Services};
use spillway_stack::model::{self, ApiProtocol, Authorization, AuthorizerKind};
use spillway_stack::template::Template;
use spillway_stack::{LoadedStack, attrs, listeners};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::SupervisorError;
use crate::stack::{Values, lookup_value};

pub struct RunningApi {
    pub name: String,
    pub addr: SocketAddr,
    pub https: bool,
    pub gateway: Arc<Gateway>,
    pub task: JoinHandle<()>,
}

fn resolve(
    t: &Template,
    what: impl FnOnce() -> String,
    loaded: &LoadedStack,
    values: &Values,
) -> Result<String, SupervisorError> {
    t.resolve(&mut |r| lookup_value(values, &loaded.stack, r))
        .map_err(|e| SupervisorError::Command {
            what: what(),
            detail: e.to_string(),
        })
}

fn rate(t: &model::Throttle) -> Rate {
    Rate {
        per_second: t.rate_limit,
        burst: t.burst_limit,
    }
}

fn read(loaded: &LoadedStack, p: &std::path::Path) -> Result<Vec<u8>, SupervisorError> {
    let path = loaded.path(p);
    std::fs::read(&path).map_err(SupervisorError::io(path.display().to_string()))
}

/// Where generated domain certificates live, under the state directory (one directory per
/// domain name, which validation keeps to host-name characters).
pub const GENERATED_DOMAIN_DIR: &str = "domain-tls";

/// A custom domain's certificate and key files: the configured ones, or a self-signed pair
/// for the domain (and loopback, so `https://127.0.0.1:PORT` verifies too), generated on first
/// start under `STATE_DIR/domain-tls/NAME/` and reused after.
fn domain_cert_files(
    loaded: &LoadedStack,
    d: &model::Domain,
) -> Result<(std::path::PathBuf, std::path::PathBuf), SupervisorError> {
    match (&d.tls.cert, &d.tls.key) {
        (Some(cert), Some(key)) if !d.tls.self_signed => Ok((cert.clone(), key.clone())),
        _ => {
            let dir = loaded
                .state_dir()
                .join(GENERATED_DOMAIN_DIR)
                .join(d.name.to_ascii_lowercase());
            let names = vec![
                d.name.to_ascii_lowercase(),
                "localhost".into(),
                "127.0.0.1".into(),
                "::1".into(),
            ];
            crate::self_signed::pair(&dir, names, &format!("the domain {}", d.name))
        }
    }
}

/// A JWKS from a URL, fetched once at start (identity providers rotate keys slowly and
/// publish new ones ahead of use; a restart picks them up). Plain `http://` only: spillway has
/// no TLS client, so an `https://` JWKS must be saved to a file.
async fn fetch_jwks(url: &str) -> Result<String, String> {
    use http_body_util::BodyExt;
    if url.starts_with("https://") {
        return Err("https:// JWKS URLs are not supported yet; save the JWKS to a file".into());
    }
    let uri: hyper::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
    let client = spillway_gateway::integrations::http::client();
    let request = hyper::Request::get(uri)
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .map_err(|e| e.to_string())?;
    let answer = tokio::time::timeout(Duration::from_secs(10), client.request(request))
        .await
        .map_err(|_| format!("{url}: no answer within 10s"))?
        .map_err(|e| format!("{url}: {e}"))?;
    if !answer.status().is_success() {
        return Err(format!("{url} answered {}", answer.status()));
    }
    let body = http_body_util::Limited::new(answer.into_body(), 1024 * 1024)
        .collect()
        .await
        .map_err(|e| format!("{url}: {e}"))?
        .to_bytes();
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// The gateway's view of `[apis.NAME]`.
pub async fn spec(
    loaded: &LoadedStack,
    name: &str,
    values: &Values,
) -> Result<ApiSpec, SupervisorError> {
    let stack = &loaded.stack;
    let api = &stack.apis[name];
    let kind = match api.protocol {
        ApiProtocol::Http => ApiKind::Http,
        ApiProtocol::Rest => ApiKind::Rest,
    };
    let mut routes = Vec::new();
    for (i, r) in api.routes.iter().enumerate() {
        let at = || format!("apis.{name}.routes[{i}]");
        let integration = if let Some(f) = &r.function {
            Integration::Function(f.clone())
        } else if let Some(m) = &r.mock {
            Integration::Mock {
                status: m.status,
                headers: m.headers.clone(),
                body: m.body.clone(),
            }
        } else if let Some(url) = &r.http {
            Integration::Http(resolve(url, || format!("{}.http", at()), loaded, values)?)
        } else if let Some(q) = &r.queue {
            let mut parameters = BTreeMap::new();
            for (k, v) in &r.parameters {
                let value = resolve(v, || format!("{}.parameters.{k}", at()), loaded, values)?;
                parameters.insert(k.clone(), value);
            }
            Integration::Queue {
                queue: q.clone(),
                parameters,
            }
        } else {
            return Err(SupervisorError::Command {
                what: at(),
                detail: "a route needs an integration".into(),
            });
        };
        let payload = match (kind, r.payload_format.as_deref()) {
            (ApiKind::Http, None | Some("2.0")) => PayloadFormat::V2,
            _ => PayloadFormat::V1,
        };
        let auth = match r.authorization {
            Authorization::None => RouteAuth::None,
            Authorization::Iam => RouteAuth::Iam,
            Authorization::Custom => RouteAuth::Authorizer {
                name: r.authorizer.clone().unwrap_or_default(),
                scopes: r.scopes.clone(),
            },
        };
        let default_timeout = match kind {
            ApiKind::Http => Duration::from_secs(30),
            ApiKind::Rest => Duration::from_secs(29),
        };
        routes.push(RouteSpec {
            key: r.route.clone(),
            integration,
            payload,
            auth,
            timeout: r.timeout.map_or(default_timeout, |t| t.get()),
            api_key_required: r.api_key_required,
        });
    }
    let mut stages = BTreeMap::new();
    for (sn, s) in &api.stages {
        let mut variables = BTreeMap::new();
        for (k, v) in &s.variables {
            variables.insert(
                k.clone(),
                resolve(
                    v,
                    || format!("apis.{name}.stages.{sn}.variables.{k}"),
                    loaded,
                    values,
                )?,
            );
        }
        stages.insert(
            sn.clone(),
            StageSpec {
                variables,
                throttle: s.throttle.as_ref().map(rate),
                route_throttle: s
                    .route_throttle
                    .iter()
                    .map(|(k, t)| (k.clone(), rate(t)))
                    .collect(),
            },
        );
    }
    let mut authorizers = BTreeMap::new();
    for (an, a) in &api.authorizers {
        let spec = match a.kind {
            AuthorizerKind::Jwt => {
                let source = a.jwks.clone().unwrap_or_default();
                let jwks = if source.starts_with("http://") || source.starts_with("https://") {
                    fetch_jwks(&source)
                        .await
                        .map_err(|detail| SupervisorError::Command {
                            what: format!("apis.{name}.authorizers.{an}.jwks"),
                            detail,
                        })?
                } else {
                    String::from_utf8_lossy(&read(loaded, std::path::Path::new(&source))?)
                        .into_owned()
                };
                AuthorizerSpec::Jwt {
                    issuer: a.issuer.clone().unwrap_or_default(),
                    audience: a.audience.clone(),
                    jwks,
                    identity_source: a
                        .identity_sources
                        .first()
                        .cloned()
                        .unwrap_or_else(|| "$request.header.Authorization".into()),
                }
            }
            AuthorizerKind::Function => AuthorizerSpec::Function {
                function: a.function.clone().unwrap_or_default(),
                simple_responses: a.simple_responses,
                identity_sources: a.identity_sources.clone(),
                result_ttl: a.result_ttl.get(),
            },
        };
        authorizers.insert(an.clone(), spec);
    }
    let access_log = api.access_log.as_ref().map(|l| AccessLogSpec {
        format: l.format.clone(),
        destination: if l.destination == "stdout" {
            LogDestination::Stdout
        } else {
            LogDestination::File(loaded.path(std::path::Path::new(&l.destination)))
        },
    });
    let mut api_keys = Vec::new();
    for (kn, k) in &api.api_keys {
        // A key's limits come from the first usage plan that names it.
        let plan = api.usage_plans.values().find(|p| p.keys.contains(kn));
        api_keys.push(ApiKeySpec {
            name: kn.clone(),
            value: resolve(
                &k.value,
                || format!("apis.{name}.api_keys.{kn}.value"),
                loaded,
                values,
            )?,
            enabled: k.enabled,
            throttle: plan.and_then(|p| p.throttle.as_ref()).map(rate),
            quota: plan.and_then(|p| p.quota.as_ref()).map(|q| {
                (
                    q.limit,
                    match q.period {
                        model::QuotaPeriod::Day => QuotaPeriod::Day,
                        model::QuotaPeriod::Week => QuotaPeriod::Week,
                        model::QuotaPeriod::Month => QuotaPeriod::Month,
                    },
                )
            }),
        });
    }
    Ok(ApiSpec {
        api_keys,
        name: name.to_owned(),
        id: attrs::api_id(stack, name),
        kind,
        region: stack.stack.region.clone(),
        account: stack.stack.account.clone(),
        routes,
        stages,
        cors: api.cors.as_ref().map(|c| CorsSpec {
            allow_origins: c.allow_origins.clone(),
            allow_methods: c.allow_methods.clone(),
            allow_headers: c.allow_headers.clone(),
            expose_headers: c.expose_headers.clone(),
            max_age: c.max_age.map(|d| d.get()),
            allow_credentials: c.allow_credentials,
        }),
        authorizers,
        access_log,
        binary_media_types: api.binary_media_types.clone(),
        domains: api
            .domains
            .iter()
            .map(|d| DomainMapping {
                name: d.name.clone(),
                base_path: d.base_path.clone(),
                stage: d.stage.clone(),
            })
            .collect(),
    })
}

/// Starts one API on its listener, holding at most `max_connections` connections at once.
pub async fn start(
    loaded: &LoadedStack,
    name: &str,
    values: &Values,
    services: Services,
    max_connections: usize,
    shutdown: watch::Receiver<bool>,
) -> Result<RunningApi, SupervisorError> {
    let api = &loaded.stack.apis[name];
    let spec = spec(loaded, name, values).await?;
    let setup = |e: spillway_gateway::SetupError| SupervisorError::Command {
        what: format!("apis.{name}"),
        detail: e.to_string(),
    };
    let tls = if api.domains.is_empty() {
        None
    } else {
        let mut certs = Vec::new();
        for d in &api.domains {
            let (cert, key) = domain_cert_files(loaded, d)?;
            certs.push(spillway_gateway::tls::DomainCert {
                name: d.name.clone(),
                cert_pem: read(loaded, &cert)?,
                key_pem: read(loaded, &key)?,
            });
        }
        Some(spillway_gateway::tls::acceptor(&certs).map_err(setup)?)
    };
    let gateway = Arc::new(Gateway::new(spec, services).map_err(setup)?);
    let field = format!("apis.{name}.listen");
    let addr =
        listeners::api_listen(&loaded.stack, name).ok_or_else(|| SupervisorError::Command {
            what: field.clone(),
            detail: "no address".into(),
        })?;
    let listener = crate::proxies::bind(addr, &field).await?;
    let addr = listener
        .local_addr()
        .map_err(SupervisorError::io(field.clone()))?;
    let https = tls.is_some();
    let task = tokio::spawn(spillway_gateway::server::serve(
        Arc::clone(&gateway),
        listener,
        tls,
        spillway_gateway::limits::ListenerLimits::new(max_connections),
        shutdown,
    ));
    tracing::info!(api = name, %addr, "API listening");
    Ok(RunningApi {
        name: name.to_owned(),
        addr,
        https,
        gateway,
        task,
    })
}

#[cfg(test)]
mod tests {
    use tokio_rustls::rustls::pki_types::CertificateDer;
    use tokio_rustls::rustls::pki_types::pem::PemObject;

    use super::*;

    const STACK: &str = r#"
[apis.events]
domains = [{ name = "Events.Example", tls = { self_signed = true } }]

[[apis.events.routes]]
route = "GET /events"
mock = { status = 200 }
"#;

    #[test]
    fn a_self_signed_domain_gets_a_certificate_for_its_name_kept_in_the_state_dir() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = dir.path().join("spillway.toml");
        let loaded = spillway_stack::load::load_str(&file, STACK, &|_| None)
            .unwrap_or_else(|e| panic!("{e:?}"));
        let domain = &loaded.stack.apis["events"].domains[0];
        let (cert, key) = domain_cert_files(&loaded, domain).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            cert,
            dir.path()
                .join(".spillway/domain-tls/events.example/cert.pem")
        );
        let first = std::fs::read(&cert).unwrap_or_else(|e| panic!("{e}"));
        // The gateway's own loader takes the pair, and the name is in the certificate.
        let certs = [spillway_gateway::tls::DomainCert {
            name: domain.name.clone(),
            cert_pem: first.clone(),
            key_pem: std::fs::read(&key).unwrap_or_else(|e| panic!("{e}")),
        }];
        assert!(spillway_gateway::tls::acceptor(&certs).is_ok());
        let der = CertificateDer::from_pem_slice(&first).unwrap_or_else(|e| panic!("{e}"));
        let has = |needle: &[u8]| der.windows(needle.len()).any(|w| w == needle);
        assert!(has(b"events.example") && has(b"localhost") && has(&[127, 0, 0, 1]));
        // A second start reuses it: clients that trusted it keep trusting it.
        let (again, _) = domain_cert_files(&loaded, domain).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(std::fs::read(again).unwrap_or_default(), first);
    }
}
