"""Shared harness for the Python client scripts: named checks, expected errors, skip groups.

Each script calls `start()` to read the endpoint and skip list, then `check`/`expect_error` for every
assertion, and `finish()` to print `ok N checks`. A failed check prints its name and exits 1 so the
first divergence from DynamoDB is the one reported.
"""

import os
import sys
import time
import uuid

import botocore.exceptions

_count = 0
_skipped = []
SKIP = set()


def start(usage):
    """Return the endpoint URL from argv[1]; `--skip a,b` and env SKIP=a,b name skipped groups."""
    args = sys.argv[1:]
    if not args or args[0] in ("-h", "--help"):
        print(usage, file=sys.stderr)
        sys.exit(2)
    endpoint = args[0]
    groups = os.environ.get("SKIP", "")
    if "--skip" in args:
        groups += "," + args[args.index("--skip") + 1]
    for flag in args:
        if flag.startswith("--skip-"):
            groups += "," + flag[len("--skip-"):]
    SKIP.update(g.strip() for g in groups.split(",") if g.strip())
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    return endpoint


def suffix():
    return uuid.uuid4().hex[:10]


_failed = []
# KEEP_GOING=1 reports every failed check and exits 1 at the end, to see all divergences in one run.
KEEP_GOING = os.environ.get("KEEP_GOING") == "1"


def fail(name, detail):
    print(f"FAIL {name}: {detail}", file=sys.stderr)
    if not KEEP_GOING:
        sys.exit(1)
    _failed.append(name)


def check(name, condition, detail=""):
    global _count
    if not condition:
        fail(name, detail or "condition false")
        return
    _count += 1


def equal(name, actual, expected):
    check(name, actual == expected, f"expected {expected!r}, got {actual!r}")


def skipped(group):
    """True when the group is skipped; remembers it so the summary line says what was not run."""
    if group in SKIP:
        if group not in _skipped:
            _skipped.append(group)
        return True
    return False


class _NoError:
    """Stands in for the missing error under KEEP_GOING so later checks on it fail, not crash."""

    response = {}


def expect_error(name, code, call, message=None, prefix=None, contains=None):
    """Run call(); it must raise a ClientError with this code (and message, if given). Returns the error."""
    global _count
    try:
        result = call()
    except botocore.exceptions.ClientError as err:
        got_code = err.response.get("Error", {}).get("Code")
        got_message = err.response.get("Error", {}).get("Message", "")
        if got_code != code:
            fail(name, f"expected {code}, got {got_code}: {got_message}")
        elif message is not None and got_message != message:
            fail(name, f"message: expected {message!r}, got {got_message!r}")
        elif prefix is not None and not got_message.startswith(prefix):
            fail(name, f"message: expected prefix {prefix!r}, got {got_message!r}")
        elif contains is not None and contains not in got_message:
            fail(name, f"message: expected to contain {contains!r}, got {got_message!r}")
        else:
            _count += 1
        return err
    fail(name, f"expected {code}, call succeeded: {result!r}")
    return _NoError()


def eventually(name, probe, timeout=60.0, interval=0.5):
    """Poll probe() until it returns a truthy value; real DynamoDB applies some changes asynchronously."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    fail(name, f"not reached within {timeout}s; last {last!r}")
    return last


def finish():
    if _failed:
        print(f"FAILED {len(_failed)} checks: {', '.join(_failed)}", file=sys.stderr)
        sys.exit(1)
    if _skipped:
        print(f"skipped groups: {', '.join(_skipped)}", file=sys.stderr)
    print(f"ok {_count} checks")
