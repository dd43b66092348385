#!/usr/bin/env python3
"""MySQL idle clients for bench/proxy-mysql.sh, speaking the wire protocol itself (asyncio, no
driver): the MySQL sibling of crates/spillway-testkit/examples/idle_clients.rs.

    mysql_idle.py idle HOST PORT USER --password PW [--db DB] --clients N

Opens N logged-in connections (greeting, HandshakeResponse41 with mysql_native_password, OK; no
TLS), 256 logins at a time; prints "ready N" (how many are up) and holds them until stdin
closes. (A connect storm lives in crates/spillway-proxy/examples/my_storm.rs: Python spent
2.5 ms of CPU per TLS connection, more than the servers it was measuring.)
"""

import argparse
import asyncio
import hashlib
import os
import resource
import signal
import struct
import sys

LONG_PASSWORD = 0x1
LONG_FLAG = 0x4
CONNECT_WITH_DB = 0x8
PROTOCOL_41 = 0x200
SSL = 0x800
TRANSACTIONS = 0x2000
SECURE_CONNECTION = 0x8000
MULTI_RESULTS = 0x20000
PLUGIN_AUTH = 0x80000
PLUGIN_AUTH_LENENC = 0x200000
UTF8MB4 = 45


class LoginError(Exception):
    pass


def native(password: bytes, scramble: bytes) -> bytes:
    if not password:
        return b""
    h1 = hashlib.sha1(password).digest()
    h2 = hashlib.sha1(h1).digest()
    h3 = hashlib.sha1(scramble + h2).digest()
    return bytes(a ^ b for a, b in zip(h1, h3))


def lenenc(n: int) -> bytes:
    if n < 251:
        return bytes([n])
    if n < 1 << 16:
        return b"\xfc" + struct.pack("<H", n)
    if n < 1 << 24:
        return b"\xfd" + struct.pack("<I", n)[:3]
    return b"\xfe" + struct.pack("<Q", n)


class Conn:
    def __init__(self, reader, writer):
        self.r, self.w, self.seq = reader, writer, 0

    async def read(self) -> bytes:
        hdr = await self.r.readexactly(4)
        n = hdr[0] | hdr[1] << 8 | hdr[2] << 16
        self.seq = (hdr[3] + 1) & 0xFF
        return await self.r.readexactly(n)

    def write(self, payload: bytes):
        self.w.write(struct.pack("<I", len(payload))[:3] + bytes([self.seq]) + payload)
        self.seq = (self.seq + 1) & 0xFF


def parse_greeting(p: bytes):
    if p[0] == 0xFF:
        raise LoginError(p[9:].decode(errors="replace"))
    i = p.index(0, 1) + 1  # server version
    i += 4  # connection id
    part1 = p[i : i + 8]
    i += 9
    caps = struct.unpack_from("<H", p, i)[0]
    i += 2 + 1 + 2  # lower capabilities, charset, status
    caps |= struct.unpack_from("<H", p, i)[0] << 16
    i += 2
    data_len = p[i]
    i += 1 + 10
    n2 = max(13, data_len - 8)
    part2 = p[i : i + n2].rstrip(b"\0")
    i += n2
    plugin = p[i:].split(b"\0", 1)[0].decode() if i < len(p) else "mysql_native_password"
    return caps, part1 + part2[:12], plugin


def err_text(p: bytes) -> str:
    code = struct.unpack_from("<H", p, 1)[0]
    msg = p[9:] if p[3:4] == b"#" else p[3:]
    return f"{code} {msg.decode(errors='replace')}"


async def login(host, port, user, password: bytes, db, tls_ctx, clear: bool) -> Conn:
    reader, writer = await asyncio.open_connection(host, port)
    c = Conn(reader, writer)
    server_caps, scramble, _ = parse_greeting(await c.read())
    caps = (
        LONG_PASSWORD | LONG_FLAG | CONNECT_WITH_DB | PROTOCOL_41 | TRANSACTIONS
        | SECURE_CONNECTION | MULTI_RESULTS | PLUGIN_AUTH | PLUGIN_AUTH_LENENC
    ) & (server_caps | SSL)
    head = struct.pack("<IIB", caps | (SSL if tls_ctx else 0), 1 << 24, UTF8MB4) + b"\0" * 23
    if tls_ctx:
        if not server_caps & SSL:
            raise LoginError("the server offers no TLS")
        c.write(head)
        await writer.drain()
        await writer.start_tls(tls_ctx)
    if clear:
        plugin, auth = "mysql_clear_password", password + b"\0"
    else:
        plugin, auth = "mysql_native_password", native(password, scramble)
    c.write(
        head + user.encode() + b"\0" + lenenc(len(auth)) + auth + db.encode() + b"\0"
        + plugin.encode() + b"\0"
    )
    while True:
        p = await c.read()
        if p[0] == 0x00:
            return c
        if p[0] == 0xFF:
            raise LoginError(err_text(p))
        if p[0] == 0xFE:  # auth switch
            name, _, data = p[1:].partition(b"\0")
            name = name.decode()
            if name == "mysql_clear_password":
                c.write(password + b"\0")
            elif name == "mysql_native_password":
                c.write(native(password, data.rstrip(b"\0")[:20]))
            else:
                raise LoginError(f"auth switch to {name}")
        elif p[0] == 0x01:  # caching_sha2 fast auth etc.: the OK follows
            continue
        else:
            raise LoginError(f"unexpected login packet {p[:1].hex()}")


async def query(c: Conn, sql: str) -> int:
    c.seq = 0
    c.write(b"\x03" + sql.encode())
    p = await c.read()
    if p[0] == 0xFF:
        raise LoginError(err_text(p))
    if p[0] == 0x00:
        return 0
    ncols = p[0]
    for _ in range(ncols):
        await c.read()
    p = await c.read()  # EOF after the column definitions (no DEPRECATE_EOF)
    rows = 0
    while True:
        p = await c.read()
        if p[0] == 0xFE and len(p) < 9:
            return rows
        if p[0] == 0xFF:
            raise LoginError(err_text(p))
        rows += 1


def close(c: Conn):
    try:
        c.seq = 0
        c.write(b"\x01")
        c.w.close()
    except Exception:  # noqa: BLE001 - closing a connection we are done with
        pass


async def idle(a):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    gate = asyncio.Semaphore(256)
    failures = {}

    async def one():
        async with gate:
            try:
                return await asyncio.wait_for(
                    login(a.host, a.port, a.user, a.password.encode(), a.db, None, False), 60
                )
            except Exception as e:  # noqa: BLE001
                key = (str(e) or type(e).__name__)[:120]
                failures[key] = failures.get(key, 0) + 1
                return None

    held = [c for c in await asyncio.gather(*(one() for _ in range(a.clients))) if c]
    if failures:
        print(f"failures: {failures}", file=sys.stderr)
    print(f"ready {len(held)}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for c in held:
        close(c)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["idle"])
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("user")
    ap.add_argument("--password", default="")
    ap.add_argument("--db", default="shop")
    ap.add_argument("--clients", type=int, default=10000)
    a = ap.parse_args()
    asyncio.run(idle(a))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        # Die of the SIGINT rather than exit 1: bash runs its INT trap only when the foreground
        # child was killed by the signal, and proxy-mysql.sh's trap is what cleans up.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
