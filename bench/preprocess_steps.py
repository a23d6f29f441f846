"""The cost of each step of `preprocess` on 300×300 PNGs of one digit (real MNIST test digits, black on white).

    python bench/preprocess_steps.py              # 100 pictures, median of 7 rounds
    python bench/preprocess_steps.py --n 50 --rounds 5

Each step is timed alone on the previous step's outputs, in the order `preprocess` runs them, so the
rows show where the time goes; "preprocess (all)" is the whole function. Steps nest: `ink_map`
contains `ink_bright`, `background` and `drop_specks`; `render_digit` contains `work_mask`,
`stroke_width` and the fitting. The machine is shared, so every figure is the median of `--rounds`.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import time
from typing import Callable

from digitrec.data import load_mnist
from digitrec.pictures import decode as D
from digitrec.pictures import preprocess as P
from digitrec.synth.variants import white_300


def timed(inputs: list, step: Callable, rounds: int) -> tuple[float, list]:
    """(median ms per input over `rounds`, the outputs of the last round)."""
    times, outputs = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        outputs = [step(x) for x in inputs]
        times.append((time.perf_counter() - start) / len(inputs) * 1000)
    return statistics.median(times), outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100, help="pictures (default 100)")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds per step (default 7)")
    args = parser.parse_args()

    pngs = []
    for digit in load_mnist("test", os.environ.get("DIGITREC_DATA"), download=False).images[:args.n]:
        buf = io.BytesIO()
        white_300(digit, None).save(buf, format="PNG")
        pngs.append(buf.getvalue())
    r = args.rounds
    rows = [("preprocess (all)", timed(pngs, P.preprocess, r)[0])]
    t, images = timed(pngs, D.open_image, r)
    rows.append(("open_image (PNG decode)", t))
    t, grays = timed(images, D.gray_levels, r)
    rows.append(("gray_levels", t))
    rows.append(("ink_map", timed(grays, lambda g: P.ink_map(g[0], "x", g[1], box_only=True), r)[0]))
    hists = [P.histogram(levels) for _, levels in grays]
    t, brights = timed(list(zip(grays, hists)), lambda gh: P.ink_bright(gh[0][0], gh[1]), r)
    rows.append(("  ink_bright", t))
    rows.append(("  background", timed([b for b, _ in brights], P.background, r)[0]))
    t, inks = timed(grays, lambda g: P.ink_map(g[0], "x", g[1], box_only=True), 1)
    masks = [P.find_ink(p).mask for p in pngs]
    rows.append(("  drop_specks (a whole picture's mask)", timed(masks, P.drop_specks, r)[0]))
    rows.append(("render_digit", timed(inks, P.render_digit, r)[0]))
    t, works = timed(inks, P.work_mask, r)
    rows.append(("  work_mask", t))
    rows.append(("  stroke_width", timed(works, P.stroke_width, r)[0]))
    rows.append(("  fit_box + centre_by_mass", timed(works, lambda w: P.centre_by_mass(P.fit_box(P.crop(w))), r)[0]))
    print(f"{args.n} 300x300 PNGs, median of {r} rounds")
    print("| step | ms per picture |\n|---|---:|")
    for name, ms in rows:
        print(f"| {name} | {ms:.3f} |")


if __name__ == "__main__":
    main()
