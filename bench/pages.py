"""Reading whole pages: digitrec's `read_page` against Tesseract (digits only), on made-up photographed pages.

    python bench/pages.py [--pages 40] [--split test|validation] [--big 5] [--no-tesseract]

For each kind of page (synth/pages.py: plain, ruled, squared, comb, photo; 1,400×1,000 pixels, numbers of
1-6 MNIST digits among words, labels, ticks and signatures), built from MNIST test digits (or with
--split validation from the held-out validation digits, the only pages the settings were tuned on),
prints how many written numbers were read exactly (a reported number whose box centre lies on the
written number's box and whose digits are all right), misread (reported there, some digit wrong) and
missed; how many numbers were reported where none is written; and the median seconds per page (the
machine's other work included: it is shared). `--big N` adds N photo pages enlarged to 12 megapixels
(4,000×3,000 JPEG), the size of a phone's photo.

Tesseract (Debian's tesseract-ocr) is run as a user would first try it: its command line, page
segmentation on (--psm 11, sparse text), digits only, TSV output; each word it reports is a number.
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import subprocess
import tempfile
import time

import numpy as np
from PIL import Image

from digitrec.data import load_mnist, train_val_split
from digitrec.inference.recognizer import Recognizer
from digitrec.synth.pages import KINDS, Page, Written, page_set

BIG = (4000, 3000)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pages", type=int, default=40, help="pages per kind (default 40: 200 pages)")
    p.add_argument("--split", default="test", choices=["test", "validation"])
    p.add_argument("--kinds", default=",".join(KINDS))
    p.add_argument("--big", type=int, default=5, help="12-megapixel photos to time (default 5)")
    p.add_argument("--no-tesseract", action="store_true")
    p.add_argument("--seed", type=int, default=31)
    p.add_argument("--threads", type=int, default=1)
    return p.parse_args()


def digits(split: str):
    if split == "test":
        test = load_mnist("test")
        return test.images, test.labels
    val = train_val_split(load_mnist("train"))[1]
    return val.images, val.labels


def score(found: list[tuple[str, tuple[int, int, int, int]]], truth: list[Written]) -> dict[str, int]:
    """Each written number: exact, misread or missed; and reports whose centre lies on no written number."""
    status = ["missed"] * len(truth)
    false = 0
    for text, (x, y, w, h) in found:
        cx, cy = x + w / 2, y + h / 2
        on = [i for i, t in enumerate(truth) if t.box[0] <= cx <= t.box[0] + t.box[2]
              and t.box[1] <= cy <= t.box[1] + t.box[3]]
        if not on:
            false += 1
        for i in on:
            if text == truth[i].text:
                status[i] = "exact"
            elif status[i] == "missed":
                status[i] = "misread"
    return {"exact": status.count("exact"), "misread": status.count("misread"), "missed": status.count("missed"),
            "false": false, "numbers": len(truth)}


def as_png(picture: Image.Image | bytes) -> bytes:
    if isinstance(picture, bytes):
        return picture
    buf = io.BytesIO()
    picture.save(buf, format="PNG")
    return buf.getvalue()


def tesseract(picture: Image.Image | bytes) -> list[tuple[str, tuple[int, int, int, int]]]:
    """Tesseract's words (digits only, sparse text) with their boxes."""
    with tempfile.NamedTemporaryFile(suffix=".img") as f:
        f.write(as_png(picture))
        f.flush()
        out = subprocess.run(["tesseract", f.name, "-", "--psm", "11", "-c", "tessedit_char_whitelist=0123456789",
                              "tsv"], capture_output=True, text=True, env={"OMP_THREAD_LIMIT": "1"}).stdout
    found = []
    for row in out.splitlines()[1:]:
        cols = row.split("\t")
        if len(cols) == 12 and cols[0] == "5" and cols[11].strip() and float(cols[10]) >= 0:
            found.append((cols[11].strip(), tuple(int(c) for c in cols[6:10])))
    return found


def digitrec_reader(recognizer: Recognizer):
    def read(picture):
        page = recognizer.read_page(picture)
        return [(n.reading.text, (n.box.x, n.box.y, n.box.width, n.box.height)) for n in page.numbers]
    return read


def run(read, pages: list[Page]) -> tuple[dict[str, int], float]:
    total: dict[str, int] = {}
    times = []
    for page in pages:
        start = time.perf_counter()
        found = read(page.picture)
        times.append(time.perf_counter() - start)
        for k, v in score(found, page.numbers).items():
            total[k] = total.get(k, 0) + v
    return total, statistics.median(times)


def enlarged(page: Page) -> Page:
    """The page as a 12-megapixel phone photo (4,000×3,000 JPEG), its truth scaled alike."""
    img = page.picture if isinstance(page.picture, Image.Image) else Image.open(io.BytesIO(page.picture))
    sx, sy = BIG[0] / img.width, BIG[1] / img.height
    buf = io.BytesIO()
    img.convert("RGB").resize(BIG, Image.Resampling.BICUBIC).save(buf, format="JPEG", quality=88)
    truth = [Written(n.text, (int(n.box[0] * sx), int(n.box[1] * sy), int(n.box[2] * sx), int(n.box[3] * sy)))
             for n in page.numbers]
    return Page(buf.getvalue(), "photo 12 MP", truth)


def line(kind: str, name: str, t: dict[str, int], seconds: float, pages: int) -> str:
    n = max(t["numbers"], 1)
    return (f"{kind:<12} {name:<10} {t['numbers']:>7} {t['exact'] / n:>7.1%} {t['misread'] / n:>8.1%} "
            f"{t['missed'] / n:>7.1%} {t['false']:>6} {20 * t['false'] / max(pages, 1):>8.2f} {seconds:>7.2f}")


def main() -> None:
    args = parse_args()
    import torch

    torch.set_num_threads(args.threads)
    recognizer = Recognizer.load(device="cpu")
    images, labels = digits(args.split)
    readers = {"digitrec": digitrec_reader(recognizer)}
    if not args.no_tesseract and shutil.which("tesseract"):
        readers["tesseract"] = tesseract
    print(f"{args.split} digits, {args.pages} pages per kind, {args.threads} torch thread(s)")
    print(f"{'pages':<12} {'reader':<10} {'numbers':>7} {'exact':>7} {'misread':>8} {'missed':>7} {'false':>6} "
          f"{'false/20p':>8} {'s/page':>7}")
    totals: dict[str, dict[str, int]] = {name: {} for name in readers}
    kinds = args.kinds.split(",")
    photos: list[Page] = []
    for k, kind in enumerate(kinds):
        pages = page_set(kind, args.pages, images, labels, np.random.default_rng(args.seed * 100 + k))
        photos += [p for p in pages if p.kind == "photo"][:args.big]
        for name, read in readers.items():
            t, seconds = run(read, pages)
            print(line(kind, name, t, seconds, len(pages)), flush=True)
            for key, v in t.items():
                totals[name][key] = totals[name].get(key, 0) + v
    for name, t in totals.items():
        print(line("all", name, t, float("nan"), args.pages * len(kinds)))
    if args.big and photos:
        big = [enlarged(p) for p in photos[:args.big]]
        t, seconds = run(readers["digitrec"], big)
        print(line("photo 12 MP", "digitrec", t, seconds, len(big)))


if __name__ == "__main__":
    main()
