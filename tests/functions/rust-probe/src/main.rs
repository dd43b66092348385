//! A function for spillway's tests, written as any Lambda user writes one: `lambda_runtime`,
//! `service_fn`, a handler taking a `LambdaEvent`. The event's `op` picks what it does.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let (payload, ctx) = event.into_parts();
    let op = payload["op"].as_str().unwrap_or("echo");
    match op {
        "echo" => Ok(payload),
        "context" => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_millis() as u64;
            Ok(json!({
                "request_id": ctx.request_id,
                "deadline_ms": ctx.deadline,
                "now_ms": now,
                "function_arn": ctx.invoked_function_arn,
                "function_name": ctx.env_config.function_name,
                "memory": ctx.env_config.memory,
                "version": ctx.env_config.version,
                "log_stream": ctx.env_config.log_stream,
                "log_group": ctx.env_config.log_group,
                "trace_id": ctx.xray_trace_id,
            }))
        }
        "env" => {
            let vars: serde_json::Map<String, Value> = std::env::vars()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            Ok(Value::Object(vars))
        }
        "sleep" => {
            let ms = payload["ms"].as_u64().unwrap_or(100);
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            Ok(json!({"slept_ms": ms, "pid": std::process::id()}))
        }
        "pid" => Ok(json!({"pid": std::process::id()})),
        "print" => {
            let text = payload["text"].as_str().unwrap_or("hello from the probe");
            println!("{text}");
            eprintln!("to stderr: {text}");
            Ok(json!({"printed": text}))
        }
        "big" => {
            let bytes = payload["bytes"].as_u64().unwrap_or(10 * 1024 * 1024) as usize;
            Ok(json!({"data": "x".repeat(bytes)}))
        }
        "alloc" => {
            let mb = payload["mb"].as_u64().unwrap_or(64) as usize;
            let mut v: Vec<u8> = vec![0; mb * 1024 * 1024];
            // Touch every page so the memory is really resident.
            for i in (0..v.len()).step_by(4096) {
                v[i] = 1;
            }
            Ok(json!({"allocated_mb": mb, "sum": v.iter().map(|&b| u64::from(b)).sum::<u64>()}))
        }
        "fail" => Err("the probe was asked to fail".into()),
        "exit" => std::process::exit(payload["code"].as_i64().unwrap_or(3) as i32),
        other => Err(format!("unknown op {other}").into()),
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handler)).await
}
