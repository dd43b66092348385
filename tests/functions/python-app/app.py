"""A Python handler, as for Lambda's python runtime."""
import os

COUNT = {"n": 0}


def handler(event, context):
    COUNT["n"] += 1
    print("python handler got", event)
    if event.get("fail"):
        raise KeyError(event["fail"])
    return {
        "style": "python",
        "event": event,
        "invocations": COUNT["n"],
        "request_id": context.aws_request_id,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "function_name": context.function_name,
        "region": os.environ.get("AWS_REGION"),
        "client_context": context.client_context,
    }


def not_serializable(event, context):
    return {"value": object()}
