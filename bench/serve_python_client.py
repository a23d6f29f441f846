"""The overload row of bench/serve_load.py: Python clients that wait as a 503's Retry-After says.

wrk asks again at once after a refusal, so thousands of refusals a second would take the cores from
the requests being answered; a well-behaved client waits. Only this row needs that, so only it pays
for a Python client (which shares the server's cores: its CPU is not the server's, but it slows it).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np


def http_request(path: str, content_type: str, body: bytes) -> bytes:
    head = (f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: {content_type}\r\n"
            f"content-length: {len(body)}\r\n\r\n")
    return head.encode() + body


async def exchange(port: int, request: bytes, connection: list) -> tuple[int, float]:
    """Send `request` on the client's kept-alive connection (opened when there is none); the status, and
    the seconds a 503 says to wait (Retry-After)."""
    if not connection:
        connection[:] = await asyncio.open_connection("127.0.0.1", port)
    reader, writer = connection
    writer.write(request)
    head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)).decode("latin-1").lower()
    length = int(head.split("content-length:", 1)[1].split("\r\n", 1)[0])
    await reader.readexactly(length)
    if "connection: close" in head:
        writer.close()
        connection.clear()
    retry = head.split("retry-after:", 1)[1].split("\r\n", 1)[0] if "retry-after:" in head else "0"
    return int(head.split(" ", 2)[1]), float(retry)


async def client(port: int, request: bytes, until: float, latencies: list[float], codes: list[int]) -> None:
    connection: list = []
    while time.perf_counter() < until:
        start, wait = time.perf_counter(), 0.0
        try:
            status, wait = await exchange(port, request, connection)
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, IndexError, ValueError):
            status = 0  # connection refused, reset or timed out, or a broken answer
            if connection:
                connection[1].close()
                connection.clear()
        if status == 200:
            latencies.append(time.perf_counter() - start)
        codes.append(status)
        if status == 503:
            await asyncio.sleep(min(wait, max(0.0, until - time.perf_counter())))
    if connection:
        connection[1].close()


async def load(port: int, request: bytes, clients: int, seconds: float) -> tuple[list[float], list[int], float]:
    latencies: list[float] = []
    codes: list[int] = []
    start = time.perf_counter()
    await asyncio.gather(*[client(port, request, start + seconds, latencies, codes) for _ in range(clients)])
    return latencies, codes, time.perf_counter() - start


def overload_row(port: int, pid: int, scenario: Any, args: Any) -> dict:
    """The row for `args.overload` patient clients sending `scenario`'s request (p50/p99 of the 200s)."""
    from serve_load import cpu_s

    request = http_request(scenario.path, scenario.content_type, scenario.body)
    asyncio.run(load(port, request, args.overload, args.warmup))
    cpu = cpu_s(pid)
    latencies, codes, elapsed = asyncio.run(load(port, request, args.overload, args.seconds))
    cpu = cpu_s(pid) - cpu
    ms = np.array(latencies or [float("nan")]) * 1000
    ok = codes.count(200) * scenario.pictures
    return {"scenario": f"overload: {scenario.name} (Python clients)", "conns": args.overload,
            "req/s": codes.count(200) / elapsed, "digits/s": ok / elapsed, "p50 ms": float(np.percentile(ms, 50)),
            "p99 ms": float(np.percentile(ms, 99)), "503s": codes.count(503),
            "errors": sum(c not in (200, 503) for c in codes), "CPU ms/digit": cpu * 1000 / ok if ok else float("nan")}
