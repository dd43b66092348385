//! A function for spillway's tests written with `lambda_http`, as for an HTTP API route: it
//! answers `GET /hello/{name}` from the path parameter and echoes a POST body.

use lambda_http::{Body, Error, Request, RequestExt, Response, run, service_fn};

async fn handler(req: Request) -> Result<Response<Body>, Error> {
    let name = req
        .path_parameters_ref()
        .and_then(|p| p.first("name"))
        .unwrap_or("world")
        .to_owned();
    let body = match req.body() {
        Body::Text(t) => t.clone(),
        Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        Body::Empty => String::new(),
        _ => String::new(),
    };
    Ok(Response::builder()
        .status(200)
        .header("content-type", "text/plain")
        .body(Body::from(format!(
            "hello {name} ({} {}) {body}",
            req.method(),
            req.uri().path()
        )))?)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    run(service_fn(handler)).await
}
