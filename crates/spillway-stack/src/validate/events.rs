//! Queues and the functions they feed.

use super::Checker;
use super::iam::check_policies;
use crate::diagnostic::FieldPath;
use crate::model::*;
use crate::resource::{Kind, ResourceId};

pub(super) fn check_queues(c: &mut Checker<'_>, stack: &Stack) {
    for (name, q) in &stack.queues {
        let me = ResourceId::new(Kind::Queue, name);
        let at = |f: &str| FieldPath::of(&["queues", name, f]);
        if q.fifo != name.ends_with(".fifo") {
            c.err_key(
                FieldPath::of(&["queues", name]),
                "a FIFO queue's name must end in \".fifo\", and only a FIFO queue's may",
            );
        }
        if q.content_based_deduplication && !q.fifo {
            c.err(
                at("content_based_deduplication"),
                "applies to FIFO queues only",
            );
        }
        c.duration(at("visibility_timeout"), q.visibility_timeout, 0, 43_200);
        c.duration(at("message_retention"), q.message_retention, 60, 1_209_600);
        c.duration(at("delay"), q.delay, 0, 900);
        c.duration(at("receive_wait_time"), q.receive_wait_time, 0, 20);
        c.range(
            at("maximum_message_size"),
            q.maximum_message_size,
            1024,
            262_144,
        );
        if let Some(dl) = &q.dead_letter {
            let path = at("dead_letter").key("queue");
            if &dl.queue == name {
                c.err(path, "a queue cannot be its own dead-letter queue");
            } else if c.named(stack, &me, path.clone(), Kind::Queue, &dl.queue, true)
                && stack.queues[&dl.queue].fifo != q.fifo
            {
                c.err(
                    path,
                    "a dead-letter queue must be of the same type (standard or FIFO) as its source",
                );
            }
            c.range(
                at("dead_letter").key("max_receive_count"),
                dl.max_receive_count,
                1,
                1000,
            );
        }
    }
}

/// Environment variables Lambda reserves; a function may not set them.
const RESERVED_ENV: &[&str] = &[
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
];

pub(super) fn check_functions(c: &mut Checker<'_>, stack: &Stack) {
    for (name, f) in &stack.functions {
        let me = ResourceId::new(Kind::Function, name);
        let at = |k: &str| FieldPath::of(&["functions", name, k]);
        c.file_exists(at("code"), &f.code, "code");
        match (f.runtime, &f.handler) {
            (Runtime::Nodejs | Runtime::Python, None) => c.err_key(
                FieldPath::of(&["functions", name]),
                "nodejs and python functions need a handler like \"index.handler\"",
            ),
            (_, Some(h)) if !h.contains('.') => c.err(at("handler"), "expected \"file.function\""),
            _ => {}
        }
        c.duration(at("timeout"), f.timeout, 1, 900);
        c.range(at("memory"), f.memory, 128, 10_240);
        c.range(at("maximum_retry_attempts"), f.maximum_retry_attempts, 0, 2);
        if let Some(rc) = f.reserved_concurrency {
            c.range(at("reserved_concurrency"), rc, 0, 1000);
        }
        for key in f.environment.keys() {
            let valid = key
                .chars()
                .next()
                .is_some_and(|ch| ch.is_ascii_alphabetic())
                && key
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_');
            if !valid {
                c.err_key(
                    at("environment").key(key.clone()),
                    "expected a name of letters, digits and '_', starting with a letter",
                );
            } else if RESERVED_ENV.contains(&key.as_str()) {
                c.err_key(
                    at("environment").key(key.clone()),
                    "this variable is reserved by the Lambda runtime",
                );
            }
        }
        if let Some(role) = &f.role {
            c.named(stack, &me, at("role"), Kind::Role, role, true);
            if !f.policies.is_empty() {
                c.err_key(
                    at("policies"),
                    "give policies to the role, or leave out role to have one made from these",
                );
            }
        }
        check_policies(c, &at("policies"), &f.policies);
        for (i, e) in f.events.iter().enumerate() {
            let p = at("events").index(i);
            if c.named(stack, &me, p.key("queue"), Kind::Queue, &e.queue, true) {
                let max = if stack.queues[&e.queue].fifo {
                    10
                } else {
                    10_000
                };
                c.range(p.key("batch_size"), e.batch_size, 1, max);
            }
            if e.batch_size > 10 && e.maximum_batching_window.get().is_zero() {
                c.err(
                    p.key("batch_size"),
                    "a batch size above 10 needs a maximum_batching_window of at least 1s",
                );
            }
            c.duration(
                p.key("maximum_batching_window"),
                e.maximum_batching_window,
                0,
                300,
            );
            if let Some(mc) = e.maximum_concurrency {
                c.range(p.key("maximum_concurrency"), mc, 2, 1000);
            }
        }
        if let Some(q) = &f.on_failure
            && c.named(stack, &me, at("on_failure"), Kind::Queue, q, true)
            && stack.queues[q].fifo
        {
            // Lambda's destinations take standard queues only (a FIFO one fails every delivery).
            c.err(
                at("on_failure"),
                "an on-failure destination must be a standard queue, not a FIFO one",
            );
        }
        c.duration(at("keep_warm"), f.keep_warm, 0, 86_400);
    }
}
