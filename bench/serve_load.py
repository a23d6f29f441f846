"""Load on `digitrec serve`: requests/s and latency percentiles under concurrent clients.

Starts its own server (`python -m digitrec serve`, in another process so the clients do
not share its GIL) on a free port of 127.0.0.1, then for each scenario runs N async
clients (httpx) back to back for a fixed time and prints one table row:

    single PNG     one real MNIST test digit per request, uploaded as a 300×300 PNG
    single pixels  one digit as JSON {"pixels": 28×28}
    batch 64 PNG   64 digits per request to /v1/predict/batch (multipart)

    python bench/serve_load.py                       # 30 s per scenario, 8 clients
    python bench/serve_load.py --seconds 10 --threads 2 --model runs/x/model.safetensors

Latency is measured per request at the client (includes HTTP and the event loop).
Stops by itself; the server is terminated on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import socket
import subprocess
import sys
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
    kwargs: dict  # for httpx.AsyncClient.post


def scenarios(images: np.ndarray) -> list[Scenario]:
    from digitrec.testing.synthetic import white_300

    def png(i: int) -> bytes:
        buf = io.BytesIO()
        white_300(images[i], None).save(buf, format="PNG")
        return buf.getvalue()

    batch = [("files", (f"{i}.png", png(i), "image/png")) for i in range(64)]
    return [Scenario("single PNG", "/v1/predict", 1, {"files": {"file": ("d.png", png(0), "image/png")}}),
            Scenario("single pixels", "/v1/predict", 1, {"json": {"pixels": images[1].tolist()}}),
            Scenario("batch 64 PNG", "/v1/predict/batch", 64, {"files": batch})]


async def client(http: httpx.AsyncClient, s: Scenario, until: float, latencies: list[float], errors: list[int]):
    while time.perf_counter() < until:
        start = time.perf_counter()
        response = await http.post(s.path, **s.kwargs)
        latencies.append(time.perf_counter() - start)
        if response.status_code != 200:
            errors.append(response.status_code)


async def load(url: str, s: Scenario, clients: int, seconds: float, warmup: float) -> dict:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
        await asyncio.gather(*[client(http, s, time.perf_counter() + warmup, [], []) for _ in range(clients)])
        latencies: list[float] = []
        errors: list[int] = []
        start = time.perf_counter()
        await asyncio.gather(*[client(http, s, start + seconds, latencies, errors) for _ in range(clients)])
        elapsed = time.perf_counter() - start
    ms = np.array(latencies) * 1000
    return {"scenario": s.name, "requests": len(latencies), "req/s": len(latencies) / elapsed,
            "digits/s": len(latencies) * s.pictures / elapsed, "p50 ms": float(np.percentile(ms, 50)),
            "p99 ms": float(np.percentile(ms, 99)), "errors": len(errors)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(args: argparse.Namespace, port: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "digitrec", "serve", "--port", str(port), "--log-level", "warning",
               "--device", "cpu", "--backend", args.backend, "--max-upload-mb", "64"]
    command += ["--threads", str(args.threads)] if args.threads else []
    command += ["--model", args.model] if args.model else []
    server = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.2)
        if server.poll() is not None:
            raise SystemExit("the server did not start")
    server.terminate()
    raise SystemExit("the server did not answer /healthz within 60 s")


def print_table(rows: list[dict], args: argparse.Namespace) -> None:
    print(f"\n{args.clients} clients, {args.seconds:g} s per scenario, server torch threads "
          f"{args.threads or 'default'}, backend {args.backend}, {os.cpu_count()} CPUs")
    cols = ["scenario", "requests", "req/s", "digits/s", "p50 ms", "p99 ms", "errors"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "|".join("---" if c == "scenario" else "---:" for c in cols) + "|")
    for r in rows:
        print("| " + " | ".join(f"{r[c]:.1f}" if isinstance(r[c], float) else str(r[c]) for c in cols) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="measured time per scenario (default 30)")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first (default 2)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--threads", type=int, default=None, help="server torch threads (default: serve's)")
    parser.add_argument("--model", default=None, help="model file (default: the shipped model)")
    parser.add_argument("--backend", default="torch")
    parser.add_argument("--only", default=None, help="run only scenarios whose name contains this")
    args = parser.parse_args()

    from digitrec.data import load_mnist

    images = load_mnist("test", os.environ.get("DIGITREC_DATA"), download=False).images[:64]
    todo = [s for s in scenarios(images) if args.only is None or args.only in s.name]
    port = free_port()
    server = start_server(args, port)
    try:
        rows = [asyncio.run(load(f"http://127.0.0.1:{port}", s, args.clients, args.seconds, args.warmup))
                for s in todo]
    finally:
        server.terminate()
        server.wait(timeout=30)
    print_table(rows, args)


if __name__ == "__main__":
    main()
