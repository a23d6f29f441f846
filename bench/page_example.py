"""Draw docs/images/page_example.png: a made-up photographed page (validation digits) with what `read_page`
found on it, boxes drawn with Pillow.

    python bench/page_example.py [--kind photo] [--seed 4] [--out docs/images/page_example.png]
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from digitrec.data import load_mnist, train_val_split
from digitrec.inference.recognizer import Recognizer
from digitrec.synth.pages import KINDS, draw_page
from digitrec.util.files import atomic_write


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kind", default="photo", choices=KINDS)
    p.add_argument("--seed", type=int, default=4)
    p.add_argument("--out", default="docs/images/page_example.png")
    args = p.parse_args()
    val = train_val_split(load_mnist("train"))[1]
    page = draw_page(args.kind, val.images, val.labels, np.random.default_rng(args.seed))
    reading = Recognizer.load(device="cpu").read_page(page.picture)
    img = page.picture if isinstance(page.picture, Image.Image) else Image.open(io.BytesIO(page.picture))
    img = img.convert("RGB")
    draw = ImageDraw.Draw(img)
    for n in reading.numbers:
        b = n.box
        for d in n.reading.digits:
            draw.rectangle((d.box.x, d.box.y, d.box.x + d.box.width, d.box.y + d.box.height), outline=(90, 160, 255))
        draw.rectangle((b.x - 3, b.y - 3, b.x + b.width + 3, b.y + b.height + 3), outline=(220, 30, 30), width=3)
        draw.text((b.x, b.y - 22), f"{n.reading.text}  {n.reading.probability:.2f}", fill=(220, 30, 30),
                  font_size=18)
    buf = io.BytesIO()
    img.resize((img.width * 3 // 4, img.height * 3 // 4), Image.Resampling.LANCZOS).save(buf, format="PNG",
                                                                                         optimize=True)
    atomic_write(Path(args.out), buf.getvalue())
    print(f"{args.out}: {len(reading.numbers)} numbers read, {len(page.numbers)} written: "
          f"{[n.reading.text for n in reading.numbers]} vs {[n.text for n in page.numbers]}")


if __name__ == "__main__":
    main()
