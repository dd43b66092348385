//! Report 001's Lambda function in Rust, written as for AWS: triggered by the SQS queue
//! (`aws_lambda_events`' `SqsEvent`), it logs in to the RDS Proxy with an IAM token from the
//! AWS SDK for Rust's RDS signer (`AWS_ENDPOINT_URL` and the role's credentials come from the
//! environment spillway sets), inserts each valid record into `users`, and names the invalid
//! ones in `batchItemFailures`, so they return until the queue moves them to its dead-letter
//! queue.

mod record;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use aws_sdk_rds::auth_token::{AuthTokenGenerator, Config as TokenConfig};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};

/// The insert; the SQS message id makes a redelivered message (its batch failed after the
/// row was written) a no-op instead of a second row.
const INSERT: &str = "INSERT INTO users (message_id, name, email) VALUES (?, ?, ?) \
                      ON DUPLICATE KEY UPDATE message_id = message_id";

struct Ingest {
    sdk: SdkConfig,
    signer: AuthTokenGenerator,
    host: String,
    port: u16,
    user: String,
    database: String,
}

impl Ingest {
    fn from_env(sdk: SdkConfig) -> Result<Self, Error> {
        let var = |k: &str| std::env::var(k).map_err(|_| format!("{k} is not set"));
        let host = var("PROXY_ENDPOINT")?;
        let port: u16 = var("PROXY_PORT")?.parse()?;
        let user = var("DB_USER")?;
        let signer = AuthTokenGenerator::new(
            TokenConfig::builder()
                .hostname(&host)
                .port(u64::from(port))
                .username(&user)
                .build()?,
        );
        Ok(Self {
            sdk,
            signer,
            host,
            port,
            user,
            database: var("DB_NAME")?,
        })
    }

    /// A connection per invocation, as the report's handler makes one: the proxy is what keeps
    /// that cheap for the database. The token is the password, sent by `mysql_clear_password`
    /// when the proxy asks for it.
    async fn connect(&self) -> Result<Conn, Error> {
        let token = self.signer.auth_token(&self.sdk).await?;
        let opts = OptsBuilder::default()
            .ip_or_hostname(self.host.as_str())
            .tcp_port(self.port)
            .prefer_socket(false)
            .user(Some(self.user.as_str()))
            .pass(Some(token.as_str()))
            .db_name(Some(self.database.as_str()))
            .enable_cleartext_plugin(true);
        Ok(Conn::new(opts).await?)
    }

    async fn handle(&self, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
        // No connection is an error of the whole batch: every message comes back after the
        // visibility timeout, valid ones included, as the report's handler's `throw e` does.
        let mut conn = self.connect().await?;
        let mut response = SqsBatchResponse::default();
        let mut inserted = 0usize;
        for message in event.payload.records {
            let id = message.message_id.unwrap_or_default();
            let body = message.body.unwrap_or_default();
            let outcome = match record::parse(&body) {
                Ok(user) => conn
                    .exec_drop(INSERT, (id.as_str(), user.name, user.email))
                    .await
                    .map_err(|e| format!("insert failed: {e}")),
                Err(why) => Err(why),
            };
            match outcome {
                Ok(()) => inserted += 1,
                Err(why) => {
                    eprintln!("message {id} not stored: {why}");
                    let mut failure = BatchItemFailure::default();
                    failure.item_identifier = id;
                    response.batch_item_failures.push(failure);
                }
            }
        }
        if let Err(e) = conn.disconnect().await {
            eprintln!("closing the connection: {e}");
        }
        println!(
            "stored {inserted}, refused {}",
            response.batch_item_failures.len()
        );
        Ok(response)
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let ingest = Ingest::from_env(sdk)?;
    let ingest = &ingest;
    lambda_runtime::run(service_fn(move |event| ingest.handle(event))).await
}
