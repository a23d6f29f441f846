"""`digitrec predict --page FILES...`: every number on each picture of a page, with its box.

A page is read by `Recognizer.read_page` (the same call /v1/page makes), one picture at a time: a page
is heavy enough that batching pictures buys nothing. A bad file gets one line on stderr and the rest
are still read (exit 1), as for `predict`. `--save-boxes DIR` writes each picture with the boxes and
their readings drawn on it, so a reader can see at a glance what was found and what was missed.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import TYPE_CHECKING

from digitrec.errors import DigitrecError
from digitrec.util.files import atomic_write

if TYPE_CHECKING:
    from PIL import Image

    from digitrec.inference.pages import PageReading
    from digitrec.inference.recognizer import Recognizer

SURE, UNSURE = (0, 160, 60), (230, 120, 0)  # box colours: green for a sure reading, orange for an unsure one


def read_pages(recognizer: Recognizer, files: list[Path], as_json: bool, boxes_dir: Path | None,
               report) -> int:
    """Print each page's numbers (JSON Lines with `as_json`); returns how many files failed.
    `report` prints one error line and returns 1 (predict.report)."""
    failed = 0
    used: set[str] = set()
    for path in files:
        try:
            page = recognizer.read_page(path, str(path))
        except DigitrecError as exc:
            failed += report(str(exc))
            continue
        print(json.dumps(page.to_dict()) if as_json else format_page(page), flush=True)
        if boxes_dir is not None:
            atomic_write(boxes_dir / unique_name(path.stem, used), drawn_png(path, page))
    return failed


def format_page(page: PageReading) -> str:
    """The page's name and count, then one indented line per number: reading, probability, box."""
    if not page.numbers:
        return f"{page.source}: no numbers found"
    count = f"{len(page.numbers)} number{'s' if len(page.numbers) != 1 else ''}"
    lines = [f"{page.source}: {count}"]
    for n in page.numbers:
        flag = "?  (unsure)" if n.reading.unsure else ""
        b = n.box
        lines.append(f"  {n.reading.text}{flag}  p={n.reading.probability:.3f}  "
                     f"at x={b.x} y={b.y} {b.width}x{b.height}")
    return "\n".join(lines)


def unique_name(stem: str, used: set[str]) -> str:
    """`stem.png`, or `stem-2.png`... when two pictures of one run share a name (a/p.jpg, b/p.jpg)."""
    name, n = stem, 1
    while name in used:
        n += 1
        name = f"{stem}-{n}"
    used.add(name)
    return f"{name}.png"


def drawn_png(path: Path, page: PageReading) -> bytes:
    """The picture (EXIF rotation applied, as the boxes are) with each number's box and reading drawn
    on it, and thin boxes around its digits; PNG bytes."""
    from PIL import Image, ImageDraw, ImageOps

    with Image.open(path) as raw:
        picture = ImageOps.exif_transpose(raw).convert("RGB")
    draw = ImageDraw.Draw(picture)
    line = max(2, round(max(picture.size) / 500))
    for n in page.numbers:
        colour = UNSURE if n.reading.unsure else SURE
        b = n.box
        for d in n.reading.digits:
            if d.box is not None:
                draw.rectangle(corners(d.box), outline=colour, width=max(1, line // 2))
        draw.rectangle(corners(b, pad=line * 2), outline=colour, width=line)
        label(draw, picture, f"{n.reading.text}{'?' if n.reading.unsure else ''} {n.reading.probability:.2f}",
              (b.x - line * 2, b.y - line * 2), colour)
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()


def corners(box, pad: int = 0) -> tuple[int, int, int, int]:
    return box.x - pad, box.y - pad, box.x + box.width - 1 + pad, box.y + box.height - 1 + pad


def label(draw, picture: Image.Image, text: str, at: tuple[int, int], colour: tuple[int, int, int]) -> None:
    """`text` in white on a `colour` tab just above `at` (below it when there is no room above)."""
    from PIL import ImageFont

    size = max(12, round(max(picture.size) / 60))
    font = ImageFont.load_default(size=size)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    width, height = right - left + 8, bottom - top + 6
    x = min(max(at[0], 0), max(picture.width - width, 0))
    y = at[1] - height if at[1] - height >= 0 else at[1]
    draw.rectangle((x, y, x + width, y + height), fill=colour)
    draw.text((x + 4 - left, y + 3 - top), text, fill=(255, 255, 255), font=font)

