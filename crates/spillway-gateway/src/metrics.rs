//! Per-API metrics named after API Gateway's CloudWatch metrics (Count, 4XXError, 5XXError,
//! Latency, IntegrationLatency), by API and stage.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::spec::ApiSpec;

#[derive(Clone, Copy, Debug, Default)]
struct Counters {
    count: u64,
    client_errors: u64,
    server_errors: u64,
    latency_ms_sum: f64,
    integration_latency_ms_sum: f64,
    integration_count: u64,
}

#[derive(Debug)]
pub struct ApiMetrics {
    api: String,
    by_stage: Mutex<BTreeMap<String, Counters>>,
}

impl ApiMetrics {
    pub fn new(spec: &ApiSpec) -> Self {
        Self {
            api: spec.name.clone(),
            by_stage: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn observe(
        &self,
        stage: &str,
        status: u16,
        latency: Duration,
        integration: Option<Duration>,
    ) {
        let Ok(mut m) = self.by_stage.lock() else {
            return;
        };
        // The stage's entry exists after its first request; only then is its name copied.
        if !m.contains_key(stage) {
            m.insert(stage.to_owned(), Counters::default());
        }
        let Some(c) = m.get_mut(stage) else {
            return;
        };
        c.count += 1;
        match status {
            400..=499 => c.client_errors += 1,
            500..=599 => c.server_errors += 1,
            _ => {}
        }
        c.latency_ms_sum += latency.as_secs_f64() * 1000.0;
        if let Some(i) = integration {
            c.integration_count += 1;
            c.integration_latency_ms_sum += i.as_secs_f64() * 1000.0;
        }
    }

    /// Prometheus text for this API's series (the caller writes the `# TYPE` lines once).
    pub fn render_series(&self, out: &mut BTreeMap<&'static str, Vec<String>>) {
        let Ok(m) = self.by_stage.lock() else {
            return;
        };
        for (stage, c) in m.iter() {
            let labels = format!("api=\"{}\",stage=\"{}\"", self.api, stage);
            let mut push = |name: &'static str, v: String| {
                out.entry(name)
                    .or_default()
                    .push(format!("{name}{{{labels}}} {v}"));
            };
            push("spillway_api_count", c.count.to_string());
            push("spillway_api_4xx_errors", c.client_errors.to_string());
            push("spillway_api_5xx_errors", c.server_errors.to_string());
            push(
                "spillway_api_latency_ms_sum",
                format!("{:.3}", c.latency_ms_sum),
            );
            push("spillway_api_latency_ms_count", c.count.to_string());
            push(
                "spillway_api_integration_latency_ms_sum",
                format!("{:.3}", c.integration_latency_ms_sum),
            );
            push(
                "spillway_api_integration_latency_ms_count",
                c.integration_count.to_string(),
            );
        }
    }
}

/// Prometheus text for several APIs.
pub fn render<'a>(apis: impl IntoIterator<Item = &'a ApiMetrics>) -> String {
    let mut series = BTreeMap::new();
    for a in apis {
        a.render_series(&mut series);
    }
    let mut out = String::new();
    for (name, lines) in series {
        let kind = if name.ends_with("_sum") || name.ends_with("_count") && name.contains("latency")
        {
            "untyped"
        } else {
            "counter"
        };
        out.push_str(&format!("# TYPE {name} {kind}\n"));
        for l in lines {
            out.push_str(&l);
            out.push('\n');
        }
    }
    out
}
