"""Load on `digitrec serve` from a load generator that stays out of the way: requests/s, digits/s,
p50/p99, refusals, and the server's CPU per digit beside the bare model's.

The load comes from `wrk` (a C program, `apt-get install wrk`) running `bench/serve_load.lua`: each
scenario's request is made once and sent again and again on kept-alive connections, for a fraction
of the CPU that a Python client would take from the 2 cores the server runs on. The server
(`python -m digitrec serve`, its own process) runs on a free port of 127.0.0.1; its CPU time is read
from /proc for its whole process tree (the server and its preprocessing workers) around each
measured run, and divided by the digits answered:

    single PNG    one real MNIST test digit, a 300×300 PNG, uploaded as multipart `file`
    raw PNG       the same PNG as the whole body, `Content-Type: image/png`
    JSON pixels   one digit as JSON {"pixels": 28×28}
    batch 64      64 such PNGs per request to /v1/predict/batch (multipart)
    overload      single PNG from --overload Python clients that wait as Retry-After says (only
                  a Python client can): only 200s and 503s expected

Beside them, the bare model: `Recognizer.probabilities` on ready 28×28 digits in batches of 64, in
this process, with 1 thread and one per usable core, on the server's backend, before and after the
load; its digits/s and CPU ms per digit. `--baseline SRC` also starts a second server from the
sources in SRC (another checkout's `src`), with uvicorn's plain HTTP (h11 and asyncio, as without
httptools and uvloop), and measures both servers row by row, taking turns, for an A/B on the same
machine at the same moment; with `--rounds N` every cell is the median of N turns.

    python bench/serve_load.py                                    # 10 s per row, 16 and 64 connections
    python bench/serve_load.py --rounds 3 --baseline /tmp/main/src
    python bench/serve_load.py --seconds 5 --only raw --connections 16 --serve-args "--workers 1"
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
from serve_python_client import overload_row

ROOT = Path(__file__).resolve().parents[1]
LUA = Path(__file__).with_name("serve_load.lua")


@dataclass
class Scenario:
    name: str
    path: str
    pictures: int  # per request
    content_type: str
    body: bytes


def multipart(files: list[tuple[str, str, bytes]]) -> tuple[str, bytes]:
    """(content type, body) of a multipart upload, as httpx (a browser, curl) would send it."""
    request = httpx.Request("POST", "http://127.0.0.1/", files=[(f, (n, b, "image/png")) for f, n, b in files])
    return request.headers["content-type"], request.read()


def scenarios(images: np.ndarray) -> list[Scenario]:
    from digitrec.synth.variants import white_300

    def png(i: int) -> bytes:
        buf = io.BytesIO()
        white_300(images[i], None).save(buf, format="PNG")
        return buf.getvalue()

    pixels = json.dumps({"pixels": images[1].tolist()}).encode()
    return [Scenario("single PNG", "/v1/predict", 1, *multipart([("file", "d.png", png(0))])),
            Scenario("raw PNG", "/v1/predict", 1, "image/png", png(0)),
            Scenario("JSON pixels", "/v1/predict", 1, "application/json", pixels),
            Scenario("batch 64", "/v1/predict/batch", 64,
                     *multipart([("files", f"{i}.png", png(i)) for i in range(64)]))]


def bare_rate(args: argparse.Namespace, seconds: float = 3.0) -> dict[int, tuple[float, float]]:
    """(digits/s, CPU ms per digit) of `Recognizer.probabilities` on ready digits, batches of 64, by threads."""
    import time

    from digitrec.data import load_mnist
    from digitrec.inference.recognizer import Recognizer
    from digitrec.util.device import set_threads
    from digitrec.util.system import usable_cores

    images = load_mnist("test", os.environ.get("DIGITREC_DATA"), download=False).images[:2048]
    rates, batch = {}, 64
    for threads in sorted({1, usable_cores()}):
        set_threads(threads)  # onnxruntime sizes its sessions from torch's thread count
        recognizer = Recognizer.load(args.model, backend=args.backend, device="cpu")
        recognizer.probabilities(images[:batch])  # warm up
        done, start, cpu = 0, time.perf_counter(), time.process_time()
        while time.perf_counter() - start < seconds:
            first = done % (len(images) - batch)
            recognizer.probabilities(images[first:first + batch])
            done += batch
        rates[threads] = (done / (time.perf_counter() - start), (time.process_time() - cpu) * 1000 / done)
    return rates


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


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def wrk(port: int, s: Scenario, connections: int, seconds: float, body_file: Path) -> dict:
    """One wrk run: the JSON line serve_load.lua prints."""
    threads = min(2, connections)
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "30s",
                          "-s", str(LUA), f"http://127.0.0.1:{port}{s.path}", "--", str(body_file), s.content_type],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.split("WRK ", 1)[1])


def measured(server: Server, s: Scenario, connections: int, args: argparse.Namespace, work: Path) -> dict:
    body_file = work / "body"
    body_file.write_bytes(s.body)
    wrk(server.port, s, connections, args.warmup, body_file)
    cpu = cpu_s(server.process.pid)
    run = wrk(server.port, s, connections, args.seconds, body_file)
    cpu = cpu_s(server.process.pid) - cpu
    ok = run["statuses"].get("200", 0)
    others = sum(n for code, n in run["statuses"].items() if code not in ("200", "503")) + run["socket_errors"]
    return {"req/s": ok / run["seconds"], "digits/s": ok * s.pictures / run["seconds"], "p50 ms": run["p50_us"] / 1000,
            "p99 ms": run["p99_us"] / 1000, "503s": run["statuses"].get("503", 0), "errors": others,
            "CPU ms/digit": cpu * 1000 / (ok * s.pictures) if ok else float("nan")}  # nan: none answered


@dataclass
class Server:
    label: str
    process: subprocess.Popen
    port: int


def start_server(args: argparse.Namespace, label: str, src: Path, plain_http: bool, work: Path) -> Server:
    """`python -m digitrec serve` from the sources in `src`; with `plain_http`, httptools and uvloop cannot be
    imported (a folder of stand-ins that fail first on the path), so uvicorn uses h11 and asyncio."""
    import socket
    import time

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    path = [str(src)]
    if plain_http:
        for name in ("httptools", "uvloop"):
            (work / "plain" / name).mkdir(parents=True, exist_ok=True)
            (work / "plain" / name / "__init__.py").write_text("raise ImportError('plain HTTP for the baseline')\n")
        path.insert(0, str(work / "plain"))
    command = [sys.executable, "-m", "digitrec", "serve", "--port", str(port), "--log-level", "warning",
               "--device", "cpu", "--max-upload-mb", "64", "--backend", args.backend, *shlex.split(args.serve_args)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                               env={**os.environ, "PYTHONPATH": os.pathsep.join(path)})
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return Server(label, process, port)
        except httpx.TransportError:
            time.sleep(0.2)
    process.terminate()
    raise SystemExit(f"the {label} server did not get ready within 90 s")


def median_row(rounds: list[dict]) -> dict:
    return {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}


def print_table(rows: list[dict], bare: list[dict[int, tuple[float, float]]], args: argparse.Namespace) -> None:
    reference = max(rate for r in bare for rate, _ in r.values())
    print(f"\nload average before: {args.load}; bare model ({args.backend}, batches of 64), digits/s (CPU ms/digit) "
          "by threads: " + "; ".join(", ".join(f"{t}: {v:,.0f} ({c:.2f})" for t, (v, c) in r.items()) for r in bare)
          + f" (before; after) → reference {reference:,.0f} digits/s")
    print(f"{args.seconds:g} s per row after {args.warmup:g} s warm-up, median of {args.rounds}, wrk, "
          f"{os.cpu_count()} CPUs, serve options: {args.serve_args or '(defaults)'}")
    cols = ["server", "scenario", "conns", "req/s", "digits/s", "share", "p50 ms", "p99 ms", "503s", "errors",
            "CPU ms/digit"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "|".join("---" if c in ("server", "scenario") else "---:" for c in cols) + "|")
    for r in rows:
        r = {**r, "share": f"{r['digits/s'] / reference:.2f}×"}
        print("| " + " | ".join(f"{r[c]:,.{2 if c == 'CPU ms/digit' else 1}f}" if isinstance(r[c], float)
                                else str(r[c]) for c in cols) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured time per row (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first (default 2)")
    parser.add_argument("--connections", default="16,64", help="wrk connections per scenario (default 16,64)")
    parser.add_argument("--rounds", type=int, default=1, help="turns per row; cells are medians (default 1)")
    parser.add_argument("--overload", type=int, default=0, help="Python clients in an overload row (default 0: none)")
    parser.add_argument("--model", default=None, help="model file (default: the shipped model)")
    parser.add_argument("--backend", default="onnx", help="serve --backend and the bare model's (default onnx)")
    parser.add_argument("--serve-args", default="", help="more options for digitrec serve, quoted")
    parser.add_argument("--only", default=None, help="run only scenarios whose name contains this")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="also serve from these sources (a checkout's src) with plain HTTP, row by row")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("serve_load: wrk is not installed (Debian: apt-get install wrk)")
    args.model = args.model and str(Path(args.model).resolve())
    args.load = Path("/proc/loadavg").read_text().split()[0]

    from digitrec.data import load_mnist

    images = load_mnist("test", os.environ.get("DIGITREC_DATA"), download=False).images[:64]
    todo = [s for s in scenarios(images) if args.only is None or args.only in s.name]
    bare = [bare_rate(args)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        servers = [start_server(args, "this", ROOT / "src", False, work)]
        try:
            if args.baseline:
                servers.insert(0, start_server(args, "baseline", args.baseline.resolve(), True, work))
            for s in todo:
                for n in map(int, args.connections.split(",")):
                    turns: dict[str, list[dict]] = {server.label: [] for server in servers}
                    for _ in range(args.rounds):
                        for server in servers:
                            turns[server.label].append(measured(server, s, n, args, work))
                    rows += [{"server": label, "scenario": s.name, "conns": n, **median_row(t)}
                             for label, t in turns.items()]
            if args.overload:
                rows += [{"server": server.label, **overload_row(server.port, server.process.pid, todo[0], args)}
                         for server in servers]
        finally:
            for server in servers:
                server.process.terminate()
                server.process.wait(timeout=60)
    bare.append(bare_rate(args))
    print_table(rows, bare, args)


if __name__ == "__main__":
    main()
