"""POST /v1/collect: a picture of a digit and its label, saved for fine-tuning (`digitrec serve --collect DIR`).

The drawing page's teach panel sends `{"image": data URL, "label": 7}`; the picture is saved as
`DIR/7/<UTC time>-<random>.png`, the folder layout `digitrec train --data DIR` reads. The route
exists only when the server was started with a folder (otherwise: 404). A picture is checked like
every upload (the body cap: 413; not a picture: 415; too many pixels: 413; broken: 400) and
decoded in full before it is kept, then written under a temporary name and renamed, so the folder
never holds half a file or a file that is not a picture.
"""

from __future__ import annotations

import io
import os
import time
import uuid
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from PIL import Image, ImageOps

from digitrec.server.bodies import media_type, parse_json
from digitrec.server.limits import FORMATS, ApiError, check_picture, decode_base64
from digitrec.server.schemas import CollectIn, CollectOut, ErrorOut
from digitrec.util.files import CannotWrite, atomic_write

router = APIRouter()

PNG_MODES = ("1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA")  # saved as they are; other modes become RGB
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "a truncated or corrupt picture, invalid JSON"},
    413: {"model": ErrorOut, "description": "body over the size cap, picture over the pixel cap"},
    415: {"model": ErrorOut, "description": "not a picture, or a body that is not JSON"},
    422: {"model": ErrorOut, "description": "wrong fields or types: a label outside 0..9, invalid base64"},
    507: {"model": ErrorOut, "description": "the collect folder's disk is full (or past a file-size limit)"},
}
BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": CollectIn.model_json_schema()}}}}


@router.post("/v1/collect", response_model=CollectOut, responses=ERRORS, tags=["collect"],
             summary="Save a labelled picture of a digit for fine-tuning", openapi_extra=BODY)
async def collect(request: Request) -> dict[str, Any]:
    """JSON `{"image": base64 PNG or data URL, "label": 0..9}` → where it was saved and how many pictures
    of that digit the folder holds now."""
    if media_type(request) != "application/json":
        raise ApiError(415, "unsupported_media_type", 'send application/json: {"image": base64, "label": 0-9}')
    body: CollectIn = await parse_json(request, CollectIn)
    raw = decode_base64(body.image, "image")
    settings = request.app.state.settings
    return await run_in_threadpool(save_picture, raw, body.label, settings.collect_dir, settings.max_pixels)


def save_picture(raw: bytes, label: int, folder: Path, max_pixels: int) -> dict[str, Any]:
    """Check, decode and save one picture atomically under `folder/label/`; count that digit's pictures."""
    check_picture(raw, "image", max_pixels, field="image")
    name = f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:12]}.png"
    try:
        atomic_write(folder / str(label) / name, as_png(raw))
    except CannotWrite as exc:  # nothing was left behind: atomic_write removed its temporary file
        if exc.no_space:  # a full disk or a file-size limit: 507, until space is freed
            raise ApiError(507, "insufficient_storage", f"cannot save the picture: the collect folder's disk is full "
                                                        f"({exc.strerror}); nothing was saved") from None
        raise ApiError(500, "cannot_save", f"cannot save the picture ({exc.strerror}); nothing was saved") from None
    return {"saved": f"{label}/{name}", "label": label, "count": count_pictures(folder / str(label))}


def as_png(raw: bytes) -> bytes:
    """The picture as PNG: a PNG as it came (once a full decode shows it whole), any other format
    re-encoded with its EXIF rotation applied."""
    try:
        with Image.open(io.BytesIO(raw), formats=FORMATS) as img:
            img.load()
            if img.format == "PNG":
                return raw
            picture = ImageOps.exif_transpose(img)
            if picture.mode not in PNG_MODES:
                picture = picture.convert("RGBA" if "A" in picture.getbands() else "RGB")
            out = io.BytesIO()
            picture.save(out, format="PNG")
            return out.getvalue()
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ApiError(400, "bad_image", f"image: truncated or corrupt image ({exc})", field="image") from None


def count_pictures(folder: Path) -> int:
    """PNG files in `folder` (temporary files of writes in progress are hidden and not counted)."""
    with os.scandir(folder) as entries:
        return sum(1 for e in entries if e.name.endswith(".png") and not e.name.startswith(".") and e.is_file())
