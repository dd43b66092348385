//! A function for spillway's tests that streams its response the way `lambda_runtime` does
//! (`Lambda-Runtime-Function-Response-Mode: streaming`, a chunked body after a metadata
//! prelude): a few chunks with pauses between them.

use lambda_runtime::streaming::{Body, Response, channel};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

async fn handler(event: LambdaEvent<Value>) -> Result<Response<Body>, Error> {
    let chunks = event.payload["chunks"].as_u64().unwrap_or(3);
    let (mut tx, rx) = channel();
    tokio::spawn(async move {
        for i in 0..chunks {
            if tx.send_data(format!("chunk {i};").into()).await.is_err() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    });
    Ok(Response::from(rx))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handler)).await
}
