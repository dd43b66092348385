"""The Invoke-API half of bench/functions.sh: the same boto3 client drives spillway and a peer
(MiniStack), so the client's own cost is in both numbers alike.

    python3 bench/functions_invoke.py NAME ENDPOINT WARM_FUNCTION COLD_FUNCTION... [--create]

Prints Markdown rows: cold invoke (first call on a new instance), warm invoke p50/p99, and
invocations per second at concurrency 1 and 10. With --create the functions are created first
from bench/functions/node-hello (MiniStack has no stack file).
"""
import io
import json
import os
import statistics
import sys
import threading
import time
import zipfile

import boto3
from botocore.config import Config

SECONDS = float(os.environ.get("DURATION", "5"))
COLD = int(os.environ.get("COLD_SAMPLES", "10"))


def client(endpoint):
    return boto3.client(
        "lambda",
        endpoint_url=endpoint,
        config=Config(retries={"max_attempts": 1}, max_pool_connections=32, read_timeout=60),
    )


def invoke(c, name):
    t = time.perf_counter()
    r = c.invoke(FunctionName=name, Payload=b'{"name":"bench"}')
    body = r["Payload"].read()
    elapsed = time.perf_counter() - t
    if r.get("FunctionError") or json.loads(body) != {"hello": "bench"}:
        raise SystemExit(f"{name}: unexpected answer {body!r}")
    return elapsed


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round((len(xs) - 1) * p))] * 1000


def rate(endpoint, name, concurrency):
    stop = time.perf_counter() + SECONDS
    counts = [0] * concurrency

    def work(i):
        c = client(endpoint)
        while time.perf_counter() < stop:
            invoke(c, name)
            counts[i] += 1

    threads = [threading.Thread(target=work, args=(i,)) for i in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / SECONDS


def create(c, name):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.write("bench/functions/node-hello/index.mjs", "index.mjs")
    c.create_function(
        FunctionName=name,
        Runtime="nodejs20.x",
        Role="arn:aws:iam::000000000000:role/bench",
        Handler="index.handler",
        Code={"ZipFile": buf.getvalue()},
        Timeout=30,
    )


def main():
    args = [a for a in sys.argv[1:] if a != "--create"]
    peer, endpoint, warm_fn, cold_mode = args[0], args[1], args[2], args[3]
    c = client(endpoint)
    colds = []
    for i in range(COLD):
        if "--create" in sys.argv:
            # A new function per sample: its first call needs a new instance.
            name = f"{cold_mode}-{i}"
            create(c, name)
            colds.append(invoke(c, name))
        else:
            # keep_warm = 0s: the instance is reaped within a second of its last call.
            time.sleep(1.6)
            colds.append(invoke(c, cold_mode))
    if "--create" in sys.argv:
        create(c, warm_fn)
    for _ in range(20):
        invoke(c, warm_fn)
    warm = []
    stop = time.perf_counter() + SECONDS
    while time.perf_counter() < stop:
        warm.append(invoke(c, warm_fn))
    print(f"| {peer} | {warm_fn} | cold invoke, ms | {pct(colds, 0.5):.1f} | {pct(colds, 0.99):.1f} | {len(colds)} |")
    print(f"| {peer} | {warm_fn} | warm invoke, ms | {pct(warm, 0.5):.2f} | {pct(warm, 0.99):.2f} | {len(warm)} |")
    for conc in (1, 10):
        print(f"| {peer} | {warm_fn} | invocations/s at concurrency {conc} | {rate(endpoint, warm_fn, conc):.0f} | | |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
