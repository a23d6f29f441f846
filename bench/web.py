"""Reading in the browser: the page's cold start, its warm time per digit, the HTTP round trip, the site's size.

Exports the shipped model as a static site (`digitrec export --format web`), serves the folder with
http.server on 127.0.0.1, and drives Debian's headless chromium (as the browser tests do):

    cold start   a fresh browser context (no cache) opens the page; from the model's first byte asked
                 to the first answer on a drawn digit (fetch, WebAssembly compile, session, one run)
    warm         the page's own reading of MNIST validation digits drawn on its pad: the picture read
                 from the canvas, preprocess.js, the model (onnxruntime-web, one thread)
    round trip   the same drawings read by `digitrec serve` (started here, another process): the page's
                 fetch of POST v1/predict, PNG made, sent, answered
    size         every file of the site, as written and gzip-compressed (what a static host that
                 compresses sends)

    python bench/web.py                    # 5 cold starts, 100 digits
    python bench/web.py --cold 3 --digits 50

Stops by itself; the server, the static host and the browser are closed on exit.
"""

from __future__ import annotations

import argparse
import gzip
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))

from browser import ARGS, CHROMIUM  # noqa: E402
from web import digit_strokes, show_strokes, static_host, wait_for_device  # noqa: E402

TIME_READ = """async () => { const d = window.digitrec, t0 = performance.now();
    const body = await d.reading.readDigit(d.digitPad);
    return [performance.now() - t0, [body.digit, body.not_digit, Array.from(body.probabilities)]]; }"""


def export_site(folder: Path) -> Path:
    from digitrec.models.modelfile import shipped_model_path

    out = folder / "web"
    subprocess.run([sys.executable, "-m", "digitrec", "export", str(shipped_model_path()), "--format", "web",
                    "--out", str(out)],
                   check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server() -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "digitrec", "serve", "--host", "127.0.0.1", "--port",
                               str(port), "--threads", "1"], cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return server, url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.terminate()
    raise SystemExit("bench/web.py: the server did not start")


def validation_drawings(n: int) -> list:
    from digitrec.data.dataset import train_val_split
    from digitrec.pictures.folders import load_data

    val = train_val_split(load_data(None, "train", None))[1]
    return [digit_strokes(image) for image in val.images[:n]]


def cold_starts(browser, base: str, n: int, strokes) -> list[float]:
    """ms from the model's load starting to the first answer, each in a fresh context (empty cache)."""
    out = []
    for _ in range(n):
        context = browser.new_context()
        page = context.new_page()
        page.goto(base + "/")
        load_ms = wait_for_device(page)
        show_strokes(page, strokes)
        first_ms, _ = page.evaluate(TIME_READ)
        out.append(load_ms + first_ms)
        context.close()
    return out


def reading_times(page, drawings, where: str) -> tuple[list[float], list]:
    """ms per drawing read `where` ("device" or "server"), and the answers (digit, not_digit, probabilities)."""
    page.click(f"#read-{where}")
    times, answers = [], []
    for strokes in drawings:
        show_strokes(page, strokes)
        ms, answer = page.evaluate(TIME_READ)
        times.append(ms)
        answers.append(answer)
    return times, answers


def same_answers(mine: list, theirs: list) -> int:
    """Drawings with the same digit and not-a-digit decision, and probabilities within 0.01."""
    return sum(a[:2] == b[:2] and max(abs(p - q) for p, q in zip(a[2], b[2])) <= 0.01 for a, b in zip(mine, theirs))


def sizes(site: Path) -> list[tuple[str, int, int]]:
    return [(str(p.relative_to(site)), p.stat().st_size, len(gzip.compress(p.read_bytes(), 9)))
            for p in sorted(site.rglob("*")) if p.is_file()]


def row(name: str, values: list[float], goal: str) -> str:
    q = statistics.quantiles(values, n=10) if len(values) > 1 else values * 9
    return f"| {name} | {statistics.median(values):.1f} | {q[-1]:.1f} | {len(values)} | {goal} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", type=int, default=5, help="cold starts (default 5)")
    parser.add_argument("--digits", type=int, default=100, help="validation digits read warm (default 100)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    drawings = validation_drawings(args.digits)
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        site = export_site(Path(tmp))
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        server, url = start_server()
        try:
            with static_host(site) as base:
                cold = cold_starts(browser, base, args.cold, drawings[0])
            page = browser.new_page()
            page.goto(url + "/")
            wait_for_device(page)
            reading_times(page, drawings[:10], "device")  # warm up both ways first
            reading_times(page, drawings[:10], "server")
            warm, here = reading_times(page, drawings, "device")
            trip, there = reading_times(page, drawings, "server")
        finally:
            server.terminate()
            server.wait(timeout=30)
            browser.close()
        parts = sizes(site)
    print("| reading | median ms | p90 ms | runs | goal |\n|---|---:|---:|---:|---:|")
    print(row("cold start (model load to first answer, static site)", cold, "≤ 1500"))
    print(row("warm, on this device, per digit", warm, "≤ 10"))
    print(row("HTTP round trip to digitrec serve, per digit", trip, "—"))
    print(f"\nparity: {same_answers(here, there)}/{len(drawings)} validation digits answered as the server does "
          "(digit, not-a-digit, probabilities within 0.01); goal 100/100")
    print("\n| file | bytes | gzip -9 bytes |\n|---|---:|---:|")
    for name, raw, packed in parts:
        print(f"| {name} | {raw:,} | {packed:,} |")
    total, packed = sum(r for _, r, _ in parts), sum(z for _, _, z in parts)
    print(f"| **all** (goal ≤ 15 MB) | {total:,} | {packed:,} |")


if __name__ == "__main__":
    main()
