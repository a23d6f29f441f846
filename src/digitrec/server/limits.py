"""What the server accepts as a picture, and the limits that keep a request from hurting it.

- `BodyLimit`: an ASGI middleware that refuses request bodies over the size cap with 413,
  from the Content-Length header or, when there is none (chunked), while reading.
- `check_picture`: reads only the picture's header (Pillow decodes lazily) to refuse
  non-images (415) and too many pixels (413: decompression bombs) before anything
  is decoded. Pictures are judged by their bytes, never by the MIME type sent.
- `decode_base64`: the `image` field of JSON bodies (plain base64 or a data: URL).

Every refusal is an `ApiError`, which the app turns into `{"error": code, "detail": message}`.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
import warnings
from typing import Any

from PIL import Image, UnidentifiedImageError

# Formats the server decodes: the ones people and drawing apps produce. Other Pillow
# plugins (many rarely used, some fragile on hostile input) are not offered to the internet.
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF", "PPM")
# A picture sent as the whole body names its format in Content-Type; these are the types taken, each the
# format its bytes must be in (a body whose bytes disagree is refused, as is any other type: never guessed).
MEDIA_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF", "image/bmp": "BMP",
               "image/webp": "WEBP", "image/tiff": "TIFF", "image/x-portable-pixmap": "PPM"}
URL_SAFE = str.maketrans("-_", "+/")  # the URL-safe alphabet, as the standard one
DATA_URL = re.compile(r"^data:[\w/+.-]*(;[\w=-]+)*;base64,", re.IGNORECASE)


class ApiError(Exception):
    """A refused request: HTTP status, a short machine-readable code, a one-line message, and the
    request field it is about ("file", "files[3]", "items[2].image", "threshold"), when there is one."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field
        self.headers = headers  # sent with the answer: Retry-After with a 503


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"error": code, "detail": message}
    if field is not None:
        body["field"] = field
    return body


# A refused body up to DRAIN × the cap is read and thrown away before the 413 is sent, so
# the client (still sending) reads the answer; beyond that the connection is just closed.
DRAIN = 8


class TooLarge(Exception):
    """Raised from inside `receive` once a chunked body passes the cap; args[0]: more body follows."""


class BodyLimit:
    """Refuse request bodies larger than `max_bytes` with 413 before they are parsed."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            if length.isdigit() and int(length) <= DRAIN * self.max_bytes:
                await drain(receive, DRAIN * self.max_bytes)
            return await self._refuse(send)
        received = 0

        async def counted() -> dict:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise TooLarge(message.get("more_body", False))
            return message

        started = False

        async def watched(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except TooLarge as exc:
            if not started:
                if exc.args[0]:  # more body to come
                    await drain(receive, DRAIN * self.max_bytes)
                await self._refuse(send)

    async def _refuse(self, send: Any) -> None:
        body = json.dumps(error_body("upload_too_large",
                                     f"request body is larger than the limit of {self.max_bytes:,} bytes")).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


async def drain(receive: Any, budget: int) -> None:
    """Read and discard the rest of a refused body (up to `budget` bytes): a client still sending
    when the server answers and closes sees a connection reset instead of the 413."""
    while budget > 0:
        message = await receive()
        budget -= len(message.get("body", b""))
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


def check_picture(raw: bytes, name: str, max_pixels: int, field: str | None = None,
                  declared: str | None = None) -> None:
    """Refuse what is not a picture we decode (415), is empty or broken (400), or has more than
    `max_pixels` pixels (413), reading only the header; with `declared` (a raw body's format, from its
    Content-Type), a picture in another format too (415)."""
    if not raw:
        raise ApiError(400, "empty_image", f"{name}: empty file (0 bytes)", field=field)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(raw), formats=(declared,) if declared else FORMATS) as img:
                width, height = img.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ApiError(413, "image_too_large", f"{name}: image has too many pixels "
                       f"(limit {max_pixels:,}; possibly a decompression bomb)", field=field) from None
    except UnidentifiedImageError:
        expected = f"a {declared} picture, as its content-type says" if declared else \
            f"a picture in a supported format ({', '.join(FORMATS)})"
        raise ApiError(415, "not_an_image", f"{name}: not {expected}", field=field) from None
    except Exception as exc:  # noqa: BLE001 - any failure to parse a header is a broken upload
        raise ApiError(400, "bad_image", f"{name}: truncated or corrupt image ({exc})", field=field) from None
    if width * height > max_pixels:
        raise ApiError(413, "image_too_large", f"{name}: image is {width}x{height} = {width * height:,} pixels, "
                       f"more than the limit of {max_pixels:,}", field=field)


def decode_base64(text: str, name: str) -> bytes:
    """Base64 (standard or URL-safe alphabet, optional data: URL prefix) → bytes; else 422."""
    text = DATA_URL.sub("", text.strip(), count=1).translate(URL_SAFE)
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(422, "invalid_base64", f"{name}: not valid base64", field=name) from None
