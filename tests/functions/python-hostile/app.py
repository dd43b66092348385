"""A hostile function: it tries what a function must not be able to do, and reports what it
managed. The test names the targets in the event; every attempt answers "denied: <reason>"
or "ALLOWED: <what it got>"."""
import os
import subprocess
import time


def attempt(fn):
    try:
        return "ALLOWED: " + repr(fn())[:200]
    except Exception as e:  # noqa: BLE001 - any refusal is the answer
        return "denied: " + type(e).__name__ + ": " + str(e)[:120]


def read(path):
    with open(path, "rb") as f:
        return f.read(64)


def write(path):
    with open(path, "ab") as f:
        f.write(b"# owned\n")
    return "wrote"


def signal_pid(pid):
    os.kill(int(pid), 0)
    return "may signal"


def handler(event, context):
    op = event.get("op", "attack")
    if op == "attack":
        import resource
        out = {
            "uid": os.getuid(),
            "gid": os.getgid(),
            # A session of its own: no other instance's process can join its process group.
            "own session": os.getsid(0) == os.getpid(),
            "open files limit": list(resource.getrlimit(resource.RLIMIT_NOFILE)),
        }
        for name, path in event.get("read", {}).items():
            out["read " + name] = attempt(lambda p=path: read(p))
        for name, path in event.get("write", {}).items():
            out["write " + name] = attempt(lambda p=path: write(p))
        for name, pid in event.get("signal", {}).items():
            out["signal " + name] = attempt(lambda p=pid: signal_pid(p))
        for name, pid in event.get("environ", {}).items():
            out["environ " + name] = attempt(lambda p=pid: read(f"/proc/{p}/environ"))
        out["visible pids"] = [int(p) for p in os.listdir("/proc") if p.isdigit()]
        out["tmp"] = attempt(lambda: write("/tmp/hostile-was-here"))
        return out
    if op == "fork":
        # As many sleeping children as it can, up to `count`.
        children = []
        error = None
        for _ in range(event["count"]):
            try:
                children.append(subprocess.Popen(["sleep", "60"]))
            except OSError as e:
                error = str(e)
                break
        n = len(children)
        for c in children:
            c.kill()
        for c in children:
            c.wait()
        return {"started": n, "error": error}
    if op == "escape":
        # A child in a session of its own, which a process-group kill does not reach.
        child = subprocess.Popen(["sleep", "300"], start_new_session=True)
        return {"pid": child.pid}
    if op == "hang":
        time.sleep(event["seconds"])
        return {"woke": True}
    if op == "print":
        for i in range(event["lines"]):
            print(f"line {i} of {event['lines']}")
        return {"printed": event["lines"]}
    raise ValueError(op)
