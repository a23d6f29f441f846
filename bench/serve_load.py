"""Load on `digitrec serve`: digits/s against the bare model's, latency, refusals under overload.

First measures the bare model: `Recognizer.probabilities` on ready 28×28 digits in batches of the
server's batch size, in this process, with 1 thread and with one per usable core; the faster is the
reference, and it is measured again after the load scenarios (the higher of the two counts, so a
noisy machine makes the goals harder, not easier). Then starts its own server (`python -m digitrec
serve`, in another process so that the clients do not share its GIL) on a free port of 127.0.0.1
and, for each scenario and number of clients, runs that many async clients back to back for a
fixed time. The clients speak HTTP/1.1 over asyncio streams, each request's bytes made once: on a
2-core machine the load generator shares the cores with the server, and httpx spent about 3 ms of
CPU per request, as much as the server's own work:

    single PNG     one real MNIST test digit per request, uploaded as a 300×300 PNG
    single pixels  one digit as JSON {"pixels": 28×28}
    batch 64 PNG   64 digits per request to /v1/predict/batch (multipart)
    overload       single PNG at --overload clients: only 200s and 503s expected

Each row gives requests/s, digits/s and their share of the bare model's digits/s, client-side p50
and p99 latency of the answered (200) requests, the count of 503s and other errors, the peak
memory of the server with its workers, and the CPU time the server and its workers spent per
answered digit. On a machine that other jobs load, wall-clock shares depend on how the kernel
shares the cores out; CPU time per digit does much less, so it is printed for the bare model too.

    python bench/serve_load.py                        # 10 s per row: 1, 16, 64 clients; overload at 256
    python bench/serve_load.py --seconds 5 --only single --clients 16 --serve-args "--batch-wait-ms 0"

Stops by itself; the server is terminated on exit. A refused client waits as its 503's Retry-After
says, as a well-behaved client does; with --impatient it asks again at once (then the refusals
themselves, thousands a second, take the 2 cores from the requests being answered).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import shlex
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Scenario:
    name: str
    path: str
    pictures: int  # per request
    request: bytes  # the whole HTTP request, made once


def encoded(path: str, **kwargs) -> bytes:
    """A POST request as httpx would send it (multipart or JSON body), as bytes to send again and again."""
    request = httpx.Request("POST", f"http://127.0.0.1{path}", **kwargs)
    body = request.read()
    head = (f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: {request.headers['content-type']}\r\n"
            f"content-length: {len(body)}\r\n\r\n")
    return head.encode() + body


def scenarios(images: np.ndarray) -> list[Scenario]:
    from digitrec.synth.variants import white_300

    def png(i: int) -> bytes:
        buf = io.BytesIO()
        white_300(images[i], None).save(buf, format="PNG")
        return buf.getvalue()

    batch = [("files", (f"{i}.png", png(i), "image/png")) for i in range(64)]
    return [Scenario("single PNG", "/v1/predict", 1, encoded("/v1/predict", files={"file": ("d.png", png(0))})),
            Scenario("single pixels", "/v1/predict", 1, encoded("/v1/predict", json={"pixels": images[1].tolist()})),
            Scenario("batch 64 PNG", "/v1/predict/batch", 64, encoded("/v1/predict/batch", files=batch))]


def bare_rate(args: argparse.Namespace, batch: int, seconds: float = 3.0) -> dict[int, tuple[float, float]]:
    """(digits/s, CPU ms per digit) of `Recognizer.probabilities` on ready digits, batches of `batch`,
    per thread count."""
    from digitrec.data import load_mnist
    from digitrec.inference.recognizer import Recognizer
    from digitrec.util.device import set_threads
    from digitrec.util.system import usable_cores

    images = load_mnist("test", os.environ.get("DIGITREC_DATA"), download=False).images[:2048]
    rates = {}
    for threads in sorted({1, usable_cores()}):
        set_threads(threads)  # onnxruntime sizes its sessions from torch's thread count
        recognizer = Recognizer.load(args.model, backend=args.backend or "onnx", device="cpu")
        recognizer.probabilities(images[:batch])  # warm up
        done, start, cpu = 0, time.perf_counter(), time.process_time()
        while time.perf_counter() - start < seconds:
            first = done % (len(images) - batch)
            recognizer.probabilities(images[first:first + batch])
            done += batch
        rates[threads] = (done / (time.perf_counter() - start), (time.process_time() - cpu) * 1000 / done)
    return rates


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


async def client(port: int, s: Scenario, until: float, latencies: list[float], codes: list[int],
                 patient: bool = True):
    connection: list = []
    while time.perf_counter() < until:
        start = time.perf_counter()
        wait = 0.0
        try:
            status, wait = await exchange(port, s.request, connection)
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, IndexError, ValueError):
            status = 0  # connection refused, reset or timed out, or a broken answer
            if connection:
                connection[1].close()
                connection.clear()
        if status == 200:
            latencies.append(time.perf_counter() - start)
        codes.append(status)
        if status == 503 and patient:
            await asyncio.sleep(min(wait, max(0.0, until - time.perf_counter())))
    if connection:
        connection[1].close()


async def load(port: int, s: Scenario, clients: int, seconds: float, warmup: float, patient: bool = True) -> dict:
    await asyncio.gather(*[client(port, s, time.perf_counter() + warmup, [], [], patient) for _ in range(clients)])
    latencies: list[float] = []
    codes: list[int] = []
    start = time.perf_counter()
    await asyncio.gather(*[client(port, s, start + seconds, latencies, codes, patient) for _ in range(clients)])
    elapsed = time.perf_counter() - start
    ms = np.array(latencies or [float("nan")]) * 1000
    return {"scenario": s.name, "clients": clients, "req/s": len(latencies) / elapsed,
            "digits/s": len(latencies) * s.pictures / elapsed, "p50 ms": float(np.percentile(ms, 50)),
            "p99 ms": float(np.percentile(ms, 99)), "503s": codes.count(503),
            "errors": sum(c not in (200, 503) for c in codes)}


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of process `pid` and its children so far."""
    total = 0
    for p in [pid, *children(pid)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """Resident memory of process `pid` and its children (the preprocessing workers), MB."""
    total = 0
    for p in [pid, *children(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def peak_memory(pid: int, stop: threading.Event, peak: list[float]) -> None:
    while not stop.wait(0.25):
        peak[0] = max(peak[0], rss_mb(pid))


def measured(port: int, pid: int, s: Scenario, clients: int, args: argparse.Namespace) -> dict:
    stop, peak = threading.Event(), [rss_mb(pid)]
    watcher = threading.Thread(target=peak_memory, args=(pid, stop, peak), daemon=True)
    watcher.start()
    cpu = cpu_s(pid)  # from the start of the warm-up: the warm-up's digits are not counted, so a bit high
    try:
        row = asyncio.run(load(port, s, clients, args.seconds, args.warmup, not args.impatient))
    finally:
        stop.set()
        watcher.join()
    digits = row["digits/s"] * args.seconds * (1 + args.warmup / args.seconds)  # warm-up at about the same rate
    return {**row, "server MB": peak[0], "CPU ms/digit": (cpu_s(pid) - cpu) * 1000 / max(digits, 1)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(args: argparse.Namespace, port: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "digitrec", "serve", "--port", str(port), "--log-level", "warning",
               "--device", "cpu", "--max-upload-mb", "64"]
    command += ["--backend", args.backend] if args.backend else []
    command += ["--threads", str(args.threads)] if args.threads else []
    command += ["--model", args.model] if args.model else []
    command += shlex.split(args.serve_args)
    server = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.2)
        if server.poll() is not None:
            raise SystemExit("the server did not start")
    server.terminate()
    raise SystemExit("the server did not answer /healthz within 90 s")


def print_table(rows: list[dict], bare: list[dict[int, tuple[float, float]]], args: argparse.Namespace) -> None:
    reference = max(rate for r in bare for rate, _ in r.values())
    print(f"\nbare model ({args.backend or 'serve default: onnx'}, batches of {args.batch}), digits/s (CPU ms/digit) "
          "by threads: " + "; ".join(", ".join(f"{t}: {v:,.0f} ({c:.2f})" for t, (v, c) in r.items()) for r in bare)
          + f" (before; after) → reference {reference:,.0f} digits/s")
    print(f"{args.seconds:g} s per row after {args.warmup:g} s warm-up, {os.cpu_count()} CPUs, "
          f"{'impatient' if args.impatient else 'patient'} clients, "
          f"serve options: {args.serve_args or '(defaults)'} {f'--threads {args.threads}' if args.threads else ''}")
    cols = ["scenario", "clients", "req/s", "digits/s", "share", "p50 ms", "p99 ms", "503s", "errors", "server MB",
            "CPU ms/digit"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "|".join("---" if c == "scenario" else "---:" for c in cols) + "|")
    for r in rows:
        r = {**r, "share": f"{r['digits/s'] / reference:.2f}×"}
        print("| " + " | ".join((f"{r[c]:.2f}" if c == "CPU ms/digit" else f"{r[c]:,.1f}") if isinstance(r[c], float)
                                else str(r[c]) for c in cols) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured time per row (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first (default 2)")
    parser.add_argument("--clients", default="1,16,64", help="client counts per scenario (default 1,16,64)")
    parser.add_argument("--overload", type=int, default=256, help="clients in the overload row (0: none)")
    parser.add_argument("--batch", type=int, default=64, help="the bare model's batch (default 64, serve's)")
    parser.add_argument("--threads", type=int, default=None, help="serve --threads (default: serve's)")
    parser.add_argument("--model", default=None, help="model file (default: the shipped model)")
    parser.add_argument("--backend", default=None, help="serve --backend (default: serve's)")
    parser.add_argument("--serve-args", default="", help="more options for digitrec serve, quoted")
    parser.add_argument("--only", default=None, help="run only scenarios whose name contains this")
    parser.add_argument("--impatient", action="store_true", help="refused clients ask again at once")
    args = parser.parse_args()

    from digitrec.data import load_mnist

    images = load_mnist("test", os.environ.get("DIGITREC_DATA"), download=False).images[:64]
    todo = [s for s in scenarios(images) if args.only is None or args.only in s.name]
    bare = [bare_rate(args, args.batch)]
    port = free_port()
    server = start_server(args, port)
    try:
        rows = [measured(port, server.pid, s, int(n), args) for s in todo for n in args.clients.split(",")]
        if args.overload and todo:
            overload = Scenario("overload: " + todo[0].name, todo[0].path, todo[0].pictures, todo[0].request)
            rows.append(measured(port, server.pid, overload, args.overload, args))
    finally:
        server.terminate()
        server.wait(timeout=60)
    bare.append(bare_rate(args, args.batch))
    print_table(rows, bare, args)


if __name__ == "__main__":
    main()
