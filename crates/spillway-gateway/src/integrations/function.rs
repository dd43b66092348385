//! Lambda proxy integration: the event goes to the function host's internal invoke path, and
//! the answer is mapped by the route's payload format. The integration timeout cuts the wait,
//! not the function (on AWS too the function runs on after API Gateway gave up).

use serde_json::Value;
use spillway_functions::{InvokeError, InvokeRequest};

use crate::access_log::Record;
use crate::gateway::Gateway;
use crate::reply::GatewayError;
use crate::response::HttpReply;
use crate::spec::RouteSpec;

pub async fn call(
    gw: &Gateway,
    function: &str,
    route: &RouteSpec,
    event: &Value,
    record: &mut Record,
) -> Result<HttpReply, GatewayError> {
    let api = &gw.spec.name;
    let Some(host) = &gw.services.functions else {
        tracing::error!(api = %api, route = %route.key, "no function host for function {function:?}");
        return Err(GatewayError::Internal);
    };
    let payload = serde_json::to_vec(event).map_err(|_| GatewayError::Internal)?;
    let invoked = tokio::time::timeout(
        route.timeout,
        host.invoke(function, InvokeRequest::new(payload)),
    )
    .await;
    let outcome = match invoked {
        Err(_) => {
            record.set("integrationErrorMessage", "the integration timed out");
            record.set("integration.error", "the integration timed out");
            return Err(GatewayError::Timeout);
        }
        Ok(Err(InvokeError::Throttled { .. })) => {
            record.set("integrationErrorMessage", "Rate Exceeded.");
            record.set("integrationStatus", "429");
            return Err(GatewayError::Unavailable);
        }
        Ok(Err(e)) => {
            tracing::warn!(api = %api, route = %route.key, "could not invoke {function:?}: {e}");
            record.set("integrationErrorMessage", e.to_string());
            record.set("integration.error", e.to_string());
            return Err(GatewayError::Internal);
        }
        Ok(Ok(o)) => o,
    };
    record.set("integrationStatus", "200");
    record.set("integration.status", "200");
    record.set("integration.requestId", outcome.request_id.clone());
    if outcome.is_error() {
        let kind = outcome.error_type.as_deref().unwrap_or("Unhandled");
        tracing::info!(
            api = %api,
            route = %route.key,
            function,
            request_id = %outcome.request_id,
            "the function failed ({kind}); answering as API Gateway does"
        );
        record.set("integrationErrorMessage", kind);
        record.set("integration.error", kind);
        return Err(GatewayError::IntegrationFailure);
    }
    gw.map_function_output(route, &outcome.payload)
        .map_err(|m| {
            tracing::warn!(api = %api, route = %route.key, function, "{m}");
            record.set("integrationErrorMessage", m.to_string());
            record.set("integration.error", m.to_string());
            GatewayError::IntegrationFailure
        })
}
