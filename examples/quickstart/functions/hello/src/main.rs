//! The quickstart's function, written exactly as for AWS Lambda with `lambda_runtime`:
//! `spillway up` builds it and runs it as a native process.
//!
//!   aws lambda invoke --function-name hello --payload '{"name":"x"}' \
//!       --cli-binary-format raw-in-base64-out out.json

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Request {
    name: String,
}

#[derive(Serialize)]
struct Response {
    hello: String,
}

async fn hello(event: LambdaEvent<Request>) -> Result<Response, Error> {
    Ok(Response {
        hello: event.payload.name,
    })
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(hello)).await
}
