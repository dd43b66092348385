//! `spillway queue list|peek|purge|redrive`: the running stack's queues, through its AWS
//! endpoint as one of its users (see client.rs for why not a side door).

pub(crate) mod client;
mod list;
mod peek;
mod redrive;

use serde_json::{Value, json};

use super::{EXIT_INPUT, EXIT_RUNTIME, print_load_error};
use crate::cli::{QueueCommand, QueueTarget};
use client::{AwsJsonClient, Service};

/// What can go wrong, and so what the person sees and the exit code.
#[derive(Debug, thiserror::Error)]
pub enum QueueCliError {
    /// A problem with the arguments or the stack file: exit 2.
    #[error("{0}")]
    Input(String),
    /// The stack is not up (no remembered endpoint, or nothing answers there): exit 1.
    #[error("the stack is not running: {0}")]
    NotRunning(String),
    /// The endpoint refused the request: AWS's code and message, exit 1.
    #[error("{code}: {message}")]
    Aws { code: String, message: String },
    /// The connection failed in another way: exit 1.
    #[error("{0}")]
    Transport(String),
}

impl QueueCliError {
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Self::Input(_) => EXIT_INPUT,
            _ => EXIT_RUNTIME,
        }
    }
}

pub async fn run(command: &QueueCommand) -> u8 {
    let target = match command {
        QueueCommand::List(a) => &a.target,
        QueueCommand::Peek(a) => &a.target,
        QueueCommand::Purge(a) => &a.target,
        QueueCommand::Redrive(a) => &a.target,
    };
    let loaded = match spillway_stack::load(&target.stack) {
        Ok(l) => l,
        Err(e) => {
            print_load_error(&e);
            return EXIT_INPUT;
        }
    };
    let result = match connect(&loaded, target, Service::Sqs) {
        Ok(client) => match command {
            QueueCommand::List(a) => list::run(&client, a).await,
            QueueCommand::Peek(a) => peek::run(&client, a).await,
            QueueCommand::Purge(a) => purge(&client, &a.queue).await,
            QueueCommand::Redrive(a) => redrive::run(&client, a).await,
        },
        Err(e) => Err(e),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

/// A client for the running stack's endpoint, signing as the chosen user.
pub(crate) fn connect(
    loaded: &spillway_stack::LoadedStack,
    target: &QueueTarget,
    service: Service,
) -> Result<AwsJsonClient, QueueCliError> {
    let state = loaded.state_dir();
    let Some(url) = spillway_supervisor::state::remembered_endpoint(&state) else {
        return Err(QueueCliError::NotRunning(format!(
            "{} names no endpoint; start it with `spillway up`",
            state.display()
        )));
    };
    let keys =
        spillway_supervisor::user_keys(loaded).map_err(|e| QueueCliError::Input(e.to_string()))?;
    let names: Vec<&str> = keys.keys().map(String::as_str).collect();
    let user = match (&target.user, names.as_slice()) {
        (Some(u), _) => u.as_str(),
        (None, [only]) => only,
        (None, []) => {
            return Err(QueueCliError::Input(
                "the stack has no [users.*]: spillway signs its requests as one of them".into(),
            ));
        }
        (None, several) => {
            return Err(QueueCliError::Input(format!(
                "the stack has several users ({}): choose one with --user",
                several.join(", ")
            )));
        }
    };
    let Some((id, secret)) = keys.get(user) else {
        return Err(QueueCliError::Input(format!(
            "the stack has no user {user:?} (its users: {})",
            names.join(", ")
        )));
    };
    AwsJsonClient::new(service, &url, &loaded.stack.stack.region, id, secret)
}

/// A queue's URL by name (GetQueueUrl: AWS's QueueDoesNotExist for an unknown one).
async fn queue_url(client: &AwsJsonClient, name: &str) -> Result<String, QueueCliError> {
    let out = client
        .call("GetQueueUrl", &json!({"QueueName": name}))
        .await?;
    Ok(text(&out, "QueueUrl").to_owned())
}

/// The named attributes of the queue at `url`.
async fn attributes(
    client: &AwsJsonClient,
    url: &str,
    names: &[&str],
) -> Result<serde_json::Map<String, Value>, QueueCliError> {
    let out = client
        .call(
            "GetQueueAttributes",
            &json!({"QueueUrl": url, "AttributeNames": names}),
        )
        .await?;
    Ok(out
        .get("Attributes")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default())
}

/// A string member, or "" when absent (answers are the endpoint's, not a person's input).
fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// PurgeQueue. AWS allows one purge per queue per 60 s; the second is its
/// PurgeQueueInProgress, printed as any other error.
async fn purge(client: &AwsJsonClient, name: &str) -> Result<u8, QueueCliError> {
    let url = queue_url(client, name).await?;
    client.call("PurgeQueue", &json!({"QueueUrl": url})).await?;
    println!("purged {name}");
    Ok(0)
}
