# spillway's Python runtime: the Lambda Runtime API loop for a `module.function` handler,
# shipped inside the spillway binary and written to <state>/runtimes/python/ on start.
#
# Like Lambda's own Python runtime it imports the handler's module from LAMBDA_TASK_ROOT, passes
# a context object with get_remaining_time_in_millis(), and reports failures as
# {"errorMessage", "errorType", "requestId", "stackTrace"}.
import http.client
import importlib
import json
import os
import sys
import time
import traceback

API = os.environ.get("AWS_LAMBDA_RUNTIME_API", "")
HOST, _, PORT = API.partition(":")
BASE = "/2018-06-01/runtime"
conn = http.client.HTTPConnection(HOST, int(PORT or 0))


def call(method, route, body=None, headers=None):
    global conn
    for attempt in (0, 1):
        try:
            conn.request(method, BASE + route, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, dict((k.lower(), v) for k, v in resp.getheaders()), resp.read()
        except (http.client.HTTPException, ConnectionError):
            if attempt:
                raise
            conn.close()
            conn = http.client.HTTPConnection(HOST, int(PORT or 0))


def error_document(exc, error_type=None, request_id=None):
    doc = {
        "errorMessage": str(exc),
        "errorType": error_type or type(exc).__name__,
        "stackTrace": traceback.format_list(traceback.extract_tb(exc.__traceback__))
        if isinstance(exc, BaseException)
        else [],
    }
    if request_id:
        doc["requestId"] = request_id
    return doc


def post_error(route, doc):
    call(
        "POST",
        route,
        json.dumps(doc).encode(),
        {
            "Content-Type": "application/vnd.aws.lambda.error+json",
            "Lambda-Runtime-Function-Error-Type": doc["errorType"],
        },
    )


def init_failed(doc):
    print(f"[ERROR] {doc['errorType']}: {doc['errorMessage']}", file=sys.stderr)
    try:
        post_error("/init/error", doc)
    finally:
        sys.exit(1)


def load_handler():
    spec = os.environ.get("_HANDLER", "")
    root = os.environ.get("LAMBDA_TASK_ROOT", os.getcwd())
    module_name, _, function = spec.rpartition(".")
    if not module_name or not function:
        init_failed({"errorMessage": f"Bad handler '{spec}'", "errorType": "Runtime.MalformedHandlerName", "stackTrace": []})
    sys.path.insert(0, root)
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as e:
        init_failed({"errorMessage": f"Unable to import module '{module_name}': {e}", "errorType": "Runtime.ImportModuleError", "stackTrace": []})
    except SyntaxError as e:
        init_failed({"errorMessage": f"Syntax error in module '{module_name}': {e}", "errorType": "Runtime.UserCodeSyntaxError", "stackTrace": []})
    except Exception as e:  # noqa: BLE001 - any failure at import time is an init error
        init_failed(error_document(e))
    handler = getattr(module, function, None)
    if not callable(handler):
        init_failed({"errorMessage": f"Handler '{function}' missing on module '{module_name}'", "errorType": "Runtime.HandlerNotFound", "stackTrace": []})
    return handler


class Context:
    def __init__(self, headers):
        self.aws_request_id = headers.get("lambda-runtime-aws-request-id")
        self.invoked_function_arn = headers.get("lambda-runtime-invoked-function-arn")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self._deadline = int(headers.get("lambda-runtime-deadline-ms", "0"))
        cc = headers.get("lambda-runtime-client-context")
        ci = headers.get("lambda-runtime-cognito-identity")
        self.client_context = json.loads(cc) if cc else None
        self.identity = json.loads(ci) if ci else None

    def get_remaining_time_in_millis(self):
        return max(0, self._deadline - int(time.time() * 1000))


def main():
    handler = load_handler()
    while True:
        status, headers, body = call("GET", "/invocation/next")
        if status != 200:
            print(f"the Runtime API answered next with {status}; exiting", file=sys.stderr)
            sys.exit(1)
        request_id = headers.get("lambda-runtime-aws-request-id")
        os.environ["_X_AMZN_TRACE_ID"] = headers.get("lambda-runtime-trace-id", "")
        try:
            event = json.loads(body) if body else {}
        except ValueError as e:
            post_error(f"/invocation/{request_id}/error", error_document(e, "Runtime.UnmarshalError", request_id))
            continue
        try:
            result = handler(event, Context(headers))
        except Exception as e:  # noqa: BLE001 - the function's failure is reported, not fatal
            doc = error_document(e, None, request_id)
            print(f"[ERROR] {doc['errorType']}: {doc['errorMessage']}", file=sys.stderr)
            post_error(f"/invocation/{request_id}/error", doc)
            continue
        try:
            payload = json.dumps(result).encode()
        except (TypeError, ValueError) as e:
            post_error(
                f"/invocation/{request_id}/error",
                {"errorMessage": f"Unable to marshal response: {e}", "errorType": "Runtime.MarshalError", "requestId": request_id, "stackTrace": []},
            )
            continue
        call("POST", f"/invocation/{request_id}/response", payload, {"Content-Type": "application/json"})


if __name__ == "__main__":
    main()
