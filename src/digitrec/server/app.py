"""The HTTP app: `create_app(settings)` → a FastAPI app serving the recogniser and the drawing page.

This module only wires things together: the settings, the recogniser (loaded
once, at start-up, in the lifespan), the preprocessing workers and the model's
batcher (`batching.Pipeline`, started and stopped in the lifespan), the request
counters (`metrics`), the request-size guard, the error format, the API router
(`routes.py`), the collecting route (`collect.py`, with `collect_dir`) and the
static page. `digitrec serve` runs the app under uvicorn; the tests do the same
on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from http import HTTPStatus
from importlib import resources
from pathlib import Path
from typing import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from digitrec import __version__
from digitrec.errors import DigitrecError
from digitrec.inference.recognizer import DEFAULT_THRESHOLD, Recognizer, check_threshold
from digitrec.pictures.decode import MAX_PIXELS
from digitrec.server.admission import AdmitRequests
from digitrec.server.bodies import InvalidBody
from digitrec.server.limits import ApiError, BodyLimit, error_body
from digitrec.server.metrics import CountRequests, Telemetry
from digitrec.util.system import usable_cores

STATIC = Path(str(resources.files("digitrec") / "server" / "static"))


# Intra-op threads of the model (torch's, onnxruntime's for large batches). One: the model runs one
# batch at a time in one thread while the preprocessing workers and the event loop use the other
# cores; measured in bench/serve_load.py (docs/serve.md). Try --threads N on many cores.
DEFAULT_THREADS = 1
# The fastest backend whose test accuracy equals torch's (docs/serve.md: same 99.68%, the same answer
# for each of the 10,000 test digits; onnx-int8 is faster but answers differently).
DEFAULT_BACKEND = "onnx"


class Settings(BaseModel):
    """Everything the server can be told, in one place (`digitrec serve` fills it from options)."""

    model_config = ConfigDict(frozen=True, protected_namespaces=())

    model_file: Path | None = None  # None: the model shipped with digitrec
    backend: str = DEFAULT_BACKEND
    device: str = "auto"
    threshold: float = DEFAULT_THRESHOLD
    max_upload_bytes: int = Field(10 * 1024 * 1024, ge=1024)  # per request body; more → 413
    # Per picture, checked on the header before decoding (decompression bombs → 413);
    # the picture reader refuses more than MAX_PIXELS anyway, so this can only lower it.
    max_pixels: int = Field(16_000_000, ge=1, le=MAX_PIXELS)
    max_batch: int = Field(256, ge=1)  # pictures per /v1/predict/batch request
    threads: int = Field(DEFAULT_THREADS, ge=1)
    # Micro-batching (batching.py; defaults measured in docs/serve.md): the most digits in one model
    # call, and the longest a ready digit waits for others still being preprocessed.
    batch_size: int = Field(64, ge=1, le=4096)
    batch_wait_ms: float = Field(0.0, ge=0, le=1000)
    # Requests inside the server at once (being read, prepared, batched), and the longest a new one may
    # expect to wait for the pictures ahead of it at the measured rate; past either: 503 + Retry-After,
    # so that overload costs a quick refusal instead of a growing queue (admission.py, docs/serve.md).
    max_queue: int = Field(64, ge=1)
    max_wait_ms: float = Field(250.0, ge=0)  # 0: no estimate, max_queue alone
    workers: int = Field(default_factory=usable_cores, ge=1)  # preprocessing processes
    collect_dir: Path | None = None  # POST /v1/collect saves labelled pictures here (None: off)
    # A request's deadline (504 past it), and how long a worker may hold one chunk before it is killed
    # as stuck and replaced (docs/serve.md, "Faults").
    request_timeout_s: float = Field(30.0, gt=0)


    @field_validator("threshold")
    @classmethod
    def _threshold(cls, value: float) -> float:
        try:
            return check_threshold(value)  # the recogniser's own check, not a copy of it
        except DigitrecError as exc:
            raise ValueError(exc.message) from None


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load the model once, before the first request (unless create_app was handed one), and start the
    preprocessing workers. uvicorn runs the part after `yield` once the requests in flight are answered
    (a graceful shutdown), so the workers and the model thread stop with nothing left to do."""
    from digitrec.server.admission import Admission
    from digitrec.server.batching import Batcher, Pipeline
    from digitrec.server.workers import PicturePool
    from digitrec.util.device import set_threads

    settings: Settings = app.state.settings
    set_threads(settings.threads)
    if app.state.recognizer is None:
        app.state.recognizer = load_recognizer(settings)
    batcher = Batcher(app.state.recognizer, settings.batch_size, settings.batch_wait_ms / 1000,
                      observe=app.state.metrics.batch.observe)
    admission = Admission(settings.max_queue, settings.max_wait_ms / 1000)
    pool = PicturePool(settings.workers, settings.max_pixels, stuck_s=settings.request_timeout_s,
                       on_restart=lambda reason: app.state.metrics.restarts.labels(reason).inc())
    pipeline = Pipeline(pool, batcher, admission, deadline_s=settings.request_timeout_s)
    try:
        await pipeline.start()
        app.state.pipeline = pipeline
        yield
    finally:
        app.state.pipeline = None
        await asyncio.to_thread(pipeline.close)


def load_recognizer(settings: Settings) -> Recognizer:
    """The model file opened with the settings' backend; the model's threads set first (onnxruntime
    sizes its sessions from them)."""
    from digitrec.util.device import set_threads

    set_threads(settings.threads)
    return Recognizer.load(settings.model_file, backend=settings.backend, threshold=settings.threshold,
                           device=settings.device)


def queue_depth(app: FastAPI) -> tuple[int, int]:
    """(requests inside, pictures waiting) for /metrics; zeros before start-up and after shut-down."""
    pipeline = getattr(app.state, "pipeline", None)
    return (pipeline.admission.inside, pipeline.waiting) if pipeline is not None else (0, 0)


def create_app(settings: Settings | None = None, recognizer: Recognizer | None = None) -> FastAPI:
    """The app for `settings` (defaults: the shipped model on onnxruntime, DEFAULT_BACKEND). The model is
    loaded at start-up; `digitrec serve` loads it earlier and passes it in, so a bad model file is a one-line error."""
    from digitrec.server.routes import register_body_schemas, router
    from digitrec.server.site import router as site_router

    settings = settings or Settings()
    app = FastAPIOffline(title="digitrec", version=__version__, lifespan=lifespan,
                         description="Recognise handwritten digits: one picture, many, or a multi-digit number.")
    app.state.settings = settings
    app.state.draining = False  # a SIGTERM came: /readyz answers 503 (lifecycle.Server)
    app.state.recognizer = recognizer
    app.state.pipeline = None
    app.state.metrics = Telemetry(lambda: queue_depth(app)[0], lambda: queue_depth(app)[1])
    app.add_middleware(BodyLimit, max_bytes=settings.max_upload_bytes)
    app.add_middleware(AdmitRequests, state=app.state)  # a full queue refuses before the body is read
    app.add_middleware(CountRequests, metrics=app.state.metrics)  # outermost: counts 413s and 503s too
    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(DigitrecError, user_error)
    app.add_exception_handler(InvalidBody, invalid_body)
    app.add_exception_handler(RequestValidationError, invalid_body)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.include_router(router)
    if settings.collect_dir is not None:
        from digitrec.server.collect import router as collect_router

        app.include_router(collect_router)
    app.include_router(site_router)  # model/web.json, model/digit.onnx: the page reads on the device
    register_body_schemas(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/page", include_in_schema=False)
    async def page_mode() -> FileResponse:
        """Reading a photographed page (static/page.html), at a path of its own so its URLs stay relative."""
        return FileResponse(STATIC / "page.html")

    return app


async def api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse(error_body(exc.code, exc.message, exc.field), status_code=exc.status, headers=exc.headers)


async def user_error(request: Request, exc: Exception) -> JSONResponse:
    """A DigitrecError that reached a route (a setting or field the library refused) → 400 naming it."""
    assert isinstance(exc, DigitrecError)
    return JSONResponse(error_body("invalid_request", exc.message, exc.field), status_code=400)


async def invalid_body(request: Request, exc: Exception) -> JSONResponse:
    """Wrong fields, shapes or types (ours and FastAPI's own, for query parameters) → 422."""
    errors = exc.errors if isinstance(exc, InvalidBody) else exc.errors()  # type: ignore[attr-defined]
    return JSONResponse(invalid_request(list(errors)), status_code=422)


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    """404, 405 and friends in the API's error shape."""
    assert isinstance(exc, StarletteHTTPException)
    code = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_").replace("-", "_")
    return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers)


def invalid_request(errors: list) -> dict:
    """Pydantic's error list → {"error", "detail": one readable line, "errors": [{loc, msg, type}]}."""
    clean = [{"loc": [str(p) for p in e.get("loc", ()) if p != "body"], "msg": str(e.get("msg", "invalid")),
              "type": str(e.get("type", ""))} for e in errors]
    detail = "; ".join(f"{'.'.join(e['loc']) or 'body'}: {e['msg']}" for e in clean[:5])
    field = ".".join(clean[0]["loc"]) if clean and clean[0]["loc"] else None
    return {**error_body("invalid_request", detail, field), "errors": clean}
