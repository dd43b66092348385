//! Report 000's Lambda function in Rust, written as for AWS: the database login comes from
//! Secrets Manager (the AWS SDK for Rust; `AWS_ENDPOINT_URL` points it at spillway), the query
//! goes through the proxy, and the answer is API Gateway's proxy response.

use aws_config::BehaviorVersion;
use aws_sdk_secretsmanager::Client as SecretsManager;
use lambda_http::{Body, Error, Request, Response, run, service_fn};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

/// The login, fetched once per instance (a warm instance reuses it, as Lambda code does).
static LOGIN: OnceCell<(String, String)> = OnceCell::const_new();

async fn login() -> Result<&'static (String, String), Error> {
    LOGIN
        .get_or_try_init(|| async {
            // AWS_ENDPOINT_URL, AWS_REGION and the role's credentials come from the environment.
            let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
            let secret = SecretsManager::new(&config)
                .get_secret_value()
                .secret_id(std::env::var("SECRET_ARN")?)
                .send()
                .await?;
            let value: Value = serde_json::from_str(secret.secret_string().unwrap_or("{}"))?;
            let field = |k: &str| value[k].as_str().unwrap_or_default().to_owned();
            Ok::<_, Error>((field("username"), field("password")))
        })
        .await
}

fn json_response(status: u16, body: &Value) -> Result<Response<Body>, Error> {
    Ok(Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))?)
}

async fn handler(_request: Request) -> Result<Response<Body>, Error> {
    let (user, password) = login().await?;
    let port: u16 = std::env::var("PROXY_PORT")?.parse()?;
    // A connection per invocation, as the report's handler makes one: the proxy is what makes
    // that cheap for the database.
    let connected = tokio_postgres::Config::new()
        .host(std::env::var("PROXY_ENDPOINT")?)
        .port(port)
        .dbname(std::env::var("DB_NAME")?)
        .user(user)
        .password(password)
        .connect(tokio_postgres::NoTls)
        .await;
    let (client, connection) = match connected {
        Ok(c) => c,
        Err(e) => {
            eprintln!("could not connect through the proxy: {e}");
            return json_response(
                500,
                &json!({"message": "Error querying users table", "error": e.to_string()}),
            );
        }
    };
    let driver = tokio::spawn(connection);
    // SELECT * FROM users, each row as JSON made by PostgreSQL.
    let result = client
        .query(
            "SELECT to_jsonb(u) FROM (SELECT * FROM users ORDER BY id) u",
            &[],
        )
        .await;
    drop(client);
    let _ = driver.await;
    match result {
        Ok(rows) => {
            let users: Vec<Value> = rows.iter().map(|r| r.get(0)).collect();
            println!("Retrieved {} users", users.len());
            json_response(200, &json!({ "users": users }))
        }
        Err(e) => {
            eprintln!("Error: {e}");
            json_response(
                500,
                &json!({"message": "Error querying users table", "error": e.to_string()}),
            )
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    run(service_fn(handler)).await
}
