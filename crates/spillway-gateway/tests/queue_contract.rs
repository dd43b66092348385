//! The contract between the gateway and the queue service for HTTP API `SQS-SendMessage`
//! routes: what SendMessage call a request makes under a route's parameter mapping, and what
//! the client gets back for SQS's answer or error. This test's sink records the calls the queue
//! service receives (the service itself is tested end to end in `spillway`'s `aws_sqs.rs`).
//! curl is the client.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use spillway_gateway::integrations::queue::{
    QueueSendError, QueueSink, SendFuture, SendMessage, SentMessage,
};
use spillway_gateway::spec::*;
use spillway_gateway::{Gateway, Services};

#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<SendMessage>>,
}

impl QueueSink for Recorder {
    fn send(&self, message: SendMessage) -> SendFuture<'_> {
        Box::pin(async move {
            let refuse = message.body.contains("refuse-me");
            if let Ok(mut c) = self.calls.lock() {
                c.push(message);
            }
            if refuse {
                return Err(QueueSendError {
                    status: 400,
                    code: "InvalidParameterValue".into(),
                    message: "refused".into(),
                });
            }
            Ok(SentMessage {
                message_id: "5fea7756-0ea4-451a-a703-a558b933e274".into(),
                md5_of_body: "fafb00f5732ab283681e124bf8747ed1".into(),
                sequence_number: None,
            })
        })
    }
}

fn api() -> ApiSpec {
    let parameters = BTreeMap::from([
        ("MessageBody".to_owned(), "$request.body".to_owned()),
        (
            "MessageGroupId".to_owned(),
            "$request.header.x-tenant".to_owned(),
        ),
        (
            "MessageDeduplicationId".to_owned(),
            "$context.requestId".to_owned(),
        ),
        (
            "DelaySeconds".to_owned(),
            "$request.querystring.delay".to_owned(),
        ),
    ]);
    ApiSpec {
        name: "ingest".into(),
        id: "abc1234567".into(),
        kind: ApiKind::Http,
        region: "us-east-1".into(),
        account: "123456789012".into(),
        routes: vec![RouteSpec {
            key: "POST /submit".into(),
            integration: Integration::Queue {
                queue: "data-sqs-queue".into(),
                parameters,
            },
            payload: PayloadFormat::V2,
            auth: RouteAuth::None,
            timeout: Duration::from_secs(30),
            api_key_required: false,
        }],
        stages: BTreeMap::new(),
        cors: None,
        authorizers: BTreeMap::new(),
        access_log: None,
        binary_media_types: Vec::new(),
        domains: Vec::new(),
        api_keys: Vec::new(),
    }
}

fn curl(args: Vec<String>) -> (u16, String) {
    let out = std::process::Command::new("curl")
        .args(["-sS", "-o", "-", "-w", "\n%{http_code}", "--max-time", "10"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("curl: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (status.trim().parse().unwrap_or(0), body.to_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_queue_route_maps_the_request_to_send_message_and_returns_sqss_answer() {
    let recorder = Arc::new(Recorder::default());
    let gateway = Arc::new(
        Gateway::new(
            api(),
            Services {
                queues: Some(Arc::clone(&recorder) as Arc<dyn QueueSink>),
                ..Services::default()
            },
        )
        .unwrap_or_else(|e| panic!("{e}")),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(spillway_gateway::server::serve(
        gateway,
        listener,
        None,
        spillway_gateway::limits::ListenerLimits::new(64),
        stopped,
    ));
    let url = format!("http://{addr}/submit?delay=5");
    let run = |args: Vec<String>| tokio::task::spawn_blocking(move || curl(args));

    let (status, body) = run(vec![
        "-H".into(),
        "x-tenant: tenant-7".into(),
        "--data-binary".into(),
        r#"{"event":"signup"}"#.into(),
        url.clone(),
    ])
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answer["MessageId"], "5fea7756-0ea4-451a-a703-a558b933e274");
    assert_eq!(
        answer["MD5OfMessageBody"],
        "fafb00f5732ab283681e124bf8747ed1"
    );
    let calls = recorder.calls.lock().map(|c| c.clone()).unwrap_or_default();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.queue, "data-sqs-queue");
    assert_eq!(call.body, r#"{"event":"signup"}"#);
    assert_eq!(call.group_id.as_deref(), Some("tenant-7"));
    assert_eq!(call.delay_seconds, Some(5));
    assert!(
        call.deduplication_id
            .as_deref()
            .is_some_and(|d| !d.is_empty())
    );

    // SQS's error passes through with its status.
    let (status, body) = run(vec![
        "--data-binary".into(),
        "refuse-me".into(),
        url.clone(),
    ])
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("InvalidParameterValue"), "{body}");

    // No body: the mapping cannot fill MessageBody, 400 without calling SQS.
    let (status, _) = run(vec!["-X".into(), "POST".into(), url])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status, 400);
    assert_eq!(recorder.calls.lock().map(|c| c.len()).unwrap_or(0), 2);

    let _ = stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
}
