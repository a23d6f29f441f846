"""Request bodies → `Picture`s → what the model sees.

A picture arrives as an uploaded file (multipart), the whole body (`Content-Type: image/png`,
`image/jpeg`, ...: no multipart to parse), base64 in JSON (`image`) or 28×28 numbers in JSON
(`pixels`). `read_pictures` turns a request into
`Picture`s without decoding anything (that is CPU work, done later in a worker
process by `workers.prepare`, which runs the same `preprocess` as the CLI). JSON
bodies over `BIG_JSON` bytes are parsed in a worker thread, off the event loop.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import numpy as np
from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from digitrec.server.limits import MEDIA_TYPES, ApiError, decode_base64
from digitrec.server.received import Picture
from digitrec.server.schemas import BatchIn, NumberIn, PictureIn

MEDIA_HINT = "send multipart/form-data with a file, application/json, or the picture itself as image/png or image/jpeg"
RAW = "body"  # a picture sent as the whole body: its name and field in answers and errors
# JSON bodies larger than this are parsed and validated in a worker thread: a batch of 256 digits as
# pixels is 200,000 numbers, tens of milliseconds of pydantic that would stall every other request.
BIG_JSON = 64 * 1024


class InvalidBody(Exception):
    """A JSON body of the wrong shape: answered 422 with pydantic's error list."""

    def __init__(self, errors: list) -> None:
        super().__init__("invalid body")
        self.errors = errors


async def read_pictures(request: Request, many: bool) -> list[Picture]:
    """The pictures of a /v1/predict (one) or /v1/predict/batch (many) request."""
    settings = request.app.state.settings
    kind = media_type(request)
    if kind == "application/json":
        raw = await request.body()
        parse = partial(json_pictures, raw, many, settings.max_batch)
        return await run_in_threadpool(parse) if len(raw) > BIG_JSON else parse()
    if kind in MEDIA_TYPES:
        if many:
            raise ApiError(415, "unsupported_media_type", f"content-type {kind!r}: a batch is multipart/form-data "
                           "(repeated `files`) or application/json; one picture as the body goes to /v1/predict")
        return [await raw_picture(request, kind)]
    files = await read_files(request, ("files", "file") if many else ("file",), settings.max_batch)
    if not many and len(files) != 1:
        raise ApiError(422, "invalid_request", f"file: send exactly one picture here, not {len(files)} "
                       "(use /v1/predict/batch for many)")
    check_count(len(files), settings.max_batch)
    return files


async def read_number_picture(request: Request, model: type[NumberIn] = NumberIn) -> Picture:
    """The picture of a /v1/number (or /v1/page: `PageIn`) request: multipart `file` or JSON
    `{"image": base64}`."""
    kind = media_type(request)
    if kind == "application/json":
        body = await parse_json(request, model)
        return Picture("image", raw=decode_base64(body.image, "image"), field="image")
    if kind in MEDIA_TYPES:
        return await raw_picture(request, kind)
    files = await read_files(request, ("file",), request.app.state.settings.max_batch)
    if len(files) != 1:
        raise ApiError(422, "invalid_request", f"file: send exactly one picture, not {len(files)}")
    return files[0]


def media_type(request: Request) -> str:
    """'application/json', 'multipart/form-data' or a picture's type (limits.MEDIA_TYPES); anything else is
    refused (415), a picture sent as application/octet-stream or text/plain too: the type is never guessed."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in ("application/json", "multipart/form-data") and kind not in MEDIA_TYPES:
        raise ApiError(415, "unsupported_media_type", f"content-type {kind or '(none)'!r}: {MEDIA_HINT}")
    return kind


async def raw_picture(request: Request, kind: str) -> Picture:
    """The body itself as the picture: its bytes as they came, checked against the declared type in the
    worker (a JPEG sent as image/png is a 415, not read as a JPEG)."""
    return Picture(RAW, raw=await request.body(), field=RAW, declared=MEDIA_TYPES[kind])


def json_pictures(raw: bytes, many: bool, max_batch: int) -> list[Picture]:
    """A JSON body of /v1/predict (one picture) or /v1/predict/batch (many) → its pictures."""
    if many:
        items = validate_json(raw, BatchIn).items
        check_count(len(items), max_batch)
        return [from_json(item, f"items[{i}]") for i, item in enumerate(items)]
    return [from_json(validate_json(raw, PictureIn), "")]


async def parse_json(request: Request, model: type[BaseModel]) -> Any:  # an instance of `model`
    raw = await request.body()
    return await run_in_threadpool(validate_json, raw, model) if len(raw) > BIG_JSON else validate_json(raw, model)


def validate_json(raw: bytes, model: type[BaseModel]) -> Any:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_json", f"body is not valid JSON ({exc})") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidBody(exc.errors(include_url=False)) from None


def from_json(item: PictureIn, where: str) -> Picture:
    """`where` is "" for a single picture, "items[3]" in a batch."""
    if item.image is not None:
        name = f"{where}.image" if where else "image"
        return Picture(name, raw=decode_base64(item.image, name), field=name)
    pixels = (np.asarray(item.pixels, dtype=np.float64) + 0.5).astype(np.uint8)  # 0..255 checked by the schema
    name = f"{where}.pixels" if where else "pixels"
    return Picture(name, pixels=pixels, preprocess=item.preprocess, field=name)


async def read_files(request: Request, fields: tuple[str, ...], max_files: int) -> list[Picture]:
    """Uploaded files under the given form field names, in the order sent (their spooled copies are
    closed on the way out)."""
    try:
        async with request.form(max_files=max_files, max_fields=max_files + 16) as form:
            pictures = [await upload(key, value, len(fields) > 1, n)
                        for n, (key, value) in enumerate((k, v) for k, v in form.multi_items() if k in fields)]
    except HTTPException as exc:  # Starlette's multipart parser: a broken body, too many parts
        too_many = "Too many files" in str(exc.detail)
        raise ApiError(413 if too_many else 400, "too_many_pictures" if too_many else "bad_multipart",
                       f"multipart body: {exc.detail}") from None
    if not pictures:
        raise ApiError(422, "invalid_request", f"{fields[0]}: missing; {MEDIA_HINT}")
    return pictures


async def upload(key: str, value: UploadFile | str, batch: bool, n: int) -> Picture:
    if not isinstance(value, UploadFile):
        raise ApiError(422, "invalid_request", f"{key}: must be an uploaded file (a part with a filename)")
    name = f"files[{n}] {value.filename or ''}".strip() if batch else value.filename or key  # files[3] photo.png
    return Picture(name, raw=await value.read(), field=f"files[{n}]" if batch else key)


def check_count(count: int, max_batch: int) -> None:
    if count > max_batch:
        raise ApiError(413, "too_many_pictures", f"{count} pictures in one request; the limit is {max_batch}")
