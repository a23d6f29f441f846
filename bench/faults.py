"""Faults under load on `digitrec serve`: what clients lose, and how soon the server serves again.

For each fault, starts its own server (`python -m digitrec serve`, in another process) on a free port of
127.0.0.1, puts it under load (`--clients` clients, each sending one digit as a 300×300 PNG upload to
/v1/predict back to back, over kept-alive connections, with the HTTP client of bench/serve_load.py),
waits `--before` seconds, does the fault, and watches `--after` seconds more while /readyz is asked every
20 ms (all with --max-wait-ms 0: see BASE):

    kill 1 of 2 workers    SIGKILL to one preprocessing worker (the OOM killer, a crash in a decoder)
    kill the only worker   the same with --workers 1: nothing prepares pictures until it is replaced
    kill 2 of 2 workers    both at once
    stop 1 of 2 workers    SIGSTOP to one worker (hung in native code), --request-timeout 2
    SIGTERM                a graceful stop under load, --shutdown-timeout 5 (clients stop sending at once)
    SIGTERM, 1 stuck       SIGTERM while one worker is stopped, --request-timeout 600 --shutdown-timeout 3

Columns: answers 200 and req/s before and after the fault; failed requests (answers other than 200),
split into 5xx with Retry-After (a clean refusal) and the rest (no answer, a reset, another status);
hung: requests without an answer after 10 s; the seconds from the fault to the first 200 answer to a
request sent after it ("served"), and to /readyz answering 200 again ("ready"); for SIGTERM, the seconds
until the process exited. Timings depend on the machine and its load: quote medians of several runs.

    python bench/faults.py                      # every fault, 8 clients, 3 s before and 6 s after
    python bench/faults.py --only kill --clients 16
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_load import children, encoded, exchange, free_port, start_server  # noqa: E402

HANG_S = 10.0
# no admission wait bound: on a busy machine it refuses some clients (503 overloaded) before and after any
# fault alike, and the failures counted here are to be the fault's
BASE = "--max-wait-ms 0"


@dataclass
class Fault:
    name: str
    serve_args: str
    act: Callable[[subprocess.Popen], None]
    stops: bool = False  # the fault stops the server: clients stop sending at once, and the exit is timed


@dataclass
class Watch:
    """What the clients and the readiness poller saw; times from time.perf_counter()."""

    requests: list[tuple[float, float, int, bool]] = field(default_factory=list)  # start, end, status, retry-after
    ready: list[tuple[float, int]] = field(default_factory=list)
    stop_sending: float = float("inf")


def workers(server: subprocess.Popen) -> list[int]:
    return [p for p in children(server.pid) if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]


def kill(count: int, sig: signal.Signals = signal.SIGKILL) -> Callable[[subprocess.Popen], None]:
    return lambda server: [os.kill(pid, sig) for pid in workers(server)[:count]]


def stuck_then_term(server: subprocess.Popen) -> None:
    kill(1, signal.SIGSTOP)(server)
    time.sleep(0.5)  # requests pile up on the stopped worker
    server.send_signal(signal.SIGTERM)


FAULTS = [
    Fault("kill 1 of 2 workers", "--workers 2", kill(1)),
    Fault("kill the only worker", "--workers 1", kill(1)),
    Fault("kill 2 of 2 workers", "--workers 2", kill(2)),
    Fault("stop 1 of 2 workers", "--workers 2 --request-timeout 2", kill(1, signal.SIGSTOP)),
    Fault("SIGTERM", "--workers 2 --shutdown-timeout 5", lambda server: server.send_signal(signal.SIGTERM), True),
    Fault("SIGTERM, 1 stuck", "--workers 2 --request-timeout 600 --shutdown-timeout 3", stuck_then_term, True),
]


async def client(port: int, request: bytes, until: float, watch: Watch) -> None:
    connection: list = []
    while time.perf_counter() < min(until, watch.stop_sending):
        start = time.perf_counter()
        try:
            status, retry = await asyncio.wait_for(exchange(port, request, connection), HANG_S)
        except asyncio.TimeoutError:
            status, retry = -1, 0.0  # hung
        except (OSError, asyncio.IncompleteReadError, IndexError, ValueError):
            status, retry = 0, 0.0  # refused, reset, or a broken answer
        if status <= 0 and connection:
            connection[1].close()
            connection.clear()
        watch.requests.append((start, time.perf_counter(), status, retry > 0))
        if status == 503:
            await asyncio.sleep(retry)
        elif status == 0:
            await asyncio.sleep(0.05)  # not listening: do not spin
    if connection:
        connection[1].close()


async def readiness(url: str, until: float, watch: Watch) -> None:
    async with httpx.AsyncClient(timeout=HANG_S) as http:
        while time.perf_counter() < until:
            try:
                status = (await http.get(f"{url}/readyz")).status_code
            except httpx.HTTPError:
                status = 0
            watch.ready.append((time.perf_counter(), status))
            await asyncio.sleep(0.02)


async def under_load(fault: Fault, server: subprocess.Popen, port: int, request: bytes,
                     args: argparse.Namespace) -> tuple[Watch, float, float]:
    """Load, the fault after `before` s, `after` s more; (what was seen, when the fault was done, exit s)."""
    watch = Watch()
    until = time.perf_counter() + args.before + args.after
    load = [asyncio.create_task(client(port, request, until, watch)) for _ in range(args.clients)]
    poller = asyncio.create_task(readiness(f"http://127.0.0.1:{port}", until, watch))
    await asyncio.sleep(args.before)
    at = time.perf_counter()
    if fault.stops:
        watch.stop_sending = at
    await asyncio.to_thread(fault.act, server)
    exited = await asyncio.to_thread(wait_exit, server, args.after + 60) if fault.stops else float("nan")
    await asyncio.gather(*load, poller)
    return watch, at, exited - at if fault.stops else float("nan")


def wait_exit(server: subprocess.Popen, timeout: float) -> float:
    try:
        server.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return float("inf")
    return time.perf_counter()


def row(fault: Fault, watch: Watch, at: float, exit_s: float, args: argparse.Namespace) -> dict:
    after = [r for r in watch.requests if r[1] > at]  # answered (or failed) after the fault
    failed = [r for r in after if r[2] != 200]
    clean = [r for r in failed if r[2] >= 500 and r[3]]
    first = min((r[1] for r in watch.requests if r[0] >= at and r[2] == 200), default=float("nan"))
    dip = next((t for t, status in watch.ready if t > at and status != 200), None)  # /readyz said "not now"
    back = next((t for t, status in watch.ready if dip is not None and t > dip and status == 200), float("nan"))
    ready = back - at if dip is not None else 0.0
    before = sum(1 for r in watch.requests if r[1] <= at and r[2] == 200)
    return {"fault": fault.name, "200 before": before, "req/s before": before / args.before,
            "req/s after": sum(1 for r in after if r[2] == 200) / args.after, "failed": len(failed),
            "5xx+Retry-After": len(clean), "other errors": len(failed) - len(clean),
            "hung": sum(r[2] == -1 for r in watch.requests), "served s": first - at,
            "ready s": ready if not fault.stops else float("nan"), "exit s": exit_s}


def print_table(rows: list[dict]) -> None:
    keys = list(rows[0])
    widths = [max(len(k), 22 if k == "fault" else 0) for k in keys]
    print("  ".join(k.rjust(w) if k != "fault" else k.ljust(w) for k, w in zip(keys, widths)))
    for r in rows:
        cells = [f"{r[k]:.2f}" if isinstance(r[k], float) else str(r[k]) for k in keys]
        print("  ".join(c.rjust(w) if k != "fault" else c.ljust(w) for c, k, w in zip(cells, keys, widths)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--before", type=float, default=3.0, help="seconds of load before the fault")
    parser.add_argument("--after", type=float, default=6.0, help="seconds watched after the fault")
    parser.add_argument("--only", default="", help="the faults whose name contains this")
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    from digitrec.data import load_mnist
    from digitrec.synth.variants import white_300

    buf = io.BytesIO()
    white_300(load_mnist("test").images[0], None).save(buf, format="PNG")
    request = encoded("/v1/predict", files={"file": ("d.png", buf.getvalue(), "image/png")})
    rows = []
    for fault in [f for f in FAULTS if args.only in f.name]:
        port = free_port()
        serve = argparse.Namespace(backend=None, threads=1, model=args.model, serve_args=f"{BASE} {fault.serve_args}")
        server = start_server(serve, port)
        try:
            watch, at, exit_s = asyncio.run(under_load(fault, server, port, request, args))
        finally:
            if server.poll() is None:
                server.terminate()
                server.wait(30)
        rows.append(row(fault, watch, at, exit_s, args))
        print(f"{fault.name}: done", file=sys.stderr)
    print(f"\n{args.clients} clients, single PNG uploads to /v1/predict; {args.before:g} s of load, then the fault, "
          f"{args.after:g} s watched\n")
    print_table(rows)


if __name__ == "__main__":
    main()
