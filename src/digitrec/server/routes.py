"""The HTTP API's routes: /v1/predict, /v1/predict/batch, /v1/number, /v1/page, /v1/model, /healthz, /metrics.

Each picture route takes multipart/form-data (uploaded files), JSON
(`schemas.PictureIn` and friends) or, for one picture, the picture itself as the
body (`image/png`, ...). FastAPI cannot declare "this or that" bodies, so the
routes read the body themselves (`bodies.py`) and the forms are documented in
/openapi.json by hand (`register_body_schemas`). A request to a picture route
has a place in the queue before it gets here (`admission.AdmitRequests`: 503
when full); pictures are decoded and preprocessed in worker processes and their
digits read in micro-batches (`batching.py`); numbers and pages are read in a
worker thread. Answers are built as plain JSON (the response models document
them; validating our own answers again cost more than the model's share of a request).
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
from anyio import to_thread
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from PIL import Image
from starlette.responses import Response

from digitrec.inference.pages import PageReading
from digitrec.inference.recognizer import NumberReading, Prediction, Recognizer
from digitrec.server.admission import RETRY_AFTER_S
from digitrec.server.batching import Pipeline
from digitrec.server.bodies import read_number_picture, read_pictures
from digitrec.server.limits import MEDIA_TYPES, ApiError
from digitrec.server.received import Picture, checked
from digitrec.server.schemas import (
    BODY_MODELS,
    BatchOut,
    ErrorOut,
    Health,
    ModelInfo,
    NumberOut,
    PageIn,
    PageOut,
    PredictOut,
)

router = APIRouter()

FILE = {"type": "string", "format": "binary"}
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "broken upload: empty, truncated or corrupt picture, invalid JSON"},
    413: {"model": ErrorOut, "description": "body over the size cap, picture over the pixel cap, too many pictures"},
    415: {"model": ErrorOut, "description": "not a picture, or a body that is neither JSON nor multipart"},
    422: {"model": ErrorOut, "description": "wrong fields, shapes or types"},
    503: {"model": ErrorOut, "description": "the server is busy: retry after the seconds in Retry-After"},
}
INCLUDE_INPUT = Query(False, description="also return the 28x28 picture the model saw (base64 PNG)")


def body_doc(json_model: str, files: dict[str, Any], required: str, raw: bool = True) -> dict[str, Any]:
    """openapi_extra for a route that takes either JSON (`json_model`) or multipart `files`, and with `raw`
    the picture itself as the body (`Content-Type: image/png`, `image/jpeg`, ...)."""
    content = {"application/json": {"schema": {"$ref": f"#/components/schemas/{json_model}"}},
               "multipart/form-data": {"schema": {"type": "object", "properties": files, "required": [required]}}}
    return {"requestBody": {"required": True, "content": {**content, **({kind: {"schema": FILE} for kind in
                                                                        MEDIA_TYPES} if raw else {})}}}


def register_body_schemas(app: FastAPI) -> None:
    """Add the hand-documented request bodies to /openapi.json's components."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schemas = generate().setdefault("components", {}).setdefault("schemas", {})
            for model in BODY_MODELS:
                schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                schemas.update(schema.pop("$defs", {}))
                schemas[model.__name__] = schema
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


# The dependencies are `async def` on purpose: FastAPI runs a plain `def` dependency in a worker thread,
# a thread hop per request for a dictionary lookup.
async def get_recognizer(request: Request) -> Recognizer:
    """The recogniser loaded at start-up (server.app.lifespan)."""
    return request.app.state.recognizer


async def get_pipeline(request: Request) -> Pipeline:
    """The preprocessing workers and the batcher, running between start-up and shut-down."""
    pipeline = request.app.state.pipeline
    if pipeline is None:
        raise ApiError(503, "unavailable", "the server is starting or stopping",
                       headers={"Retry-After": str(RETRY_AFTER_S)})
    return pipeline


def model_ref(recognizer: Recognizer) -> dict[str, str]:
    meta = recognizer.metadata
    return {"name": str(meta.get("arch", "unknown")), "version": str(meta.get("weights_sha256", "unknown"))[:12]}


def png_base64(image: np.ndarray) -> str:
    """(28, 28) uint8 → base64 PNG (about 300 bytes)."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def prediction_out(p: Prediction, include_input: bool) -> dict[str, Any]:
    return {**p.to_dict(), "input_png": png_base64(p.input) if include_input else None}


@router.get("/healthz", response_model=Health, responses={503: {"model": Health}}, tags=["service"],
            summary="Liveness: the server can serve (restart it when this fails)")
async def healthz(request: Request, recognizer: Recognizer = Depends(get_recognizer)) -> Response:
    """200 while the server can serve; 503 when it cannot and will not recover by itself: preprocessing
    workers that fail to start again, or a model call that has hung past the request deadline. A worker
    being replaced is not a failure (the pool heals; /readyz says so)."""
    pipeline = request.app.state.pipeline
    problems = pipeline.problems() if pipeline is not None else []
    body = {"status": "failing" if problems else "ok", "model": model_ref(recognizer)}
    return JSONResponse({**body, "detail": "; ".join(problems)} if problems else body,
                        status_code=503 if problems else 200)


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}}, tags=["service"],
            summary="Readiness: send this server traffic now")
async def readyz(request: Request, recognizer: Recognizer = Depends(get_recognizer)) -> Response:
    """200 when the server is serving at full strength; 503 with Retry-After while it starts, drains after
    a SIGTERM, replaces a worker, or fails (/healthz)."""
    state = request.app.state
    status, detail = readiness(state.pipeline, state.draining)
    body = {"status": status, "model": model_ref(recognizer), **({"detail": detail} if detail else {})}
    if status == "ready":
        return JSONResponse(body)
    return JSONResponse(body, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})


def readiness(pipeline: Pipeline | None, draining: bool) -> tuple[str, str]:
    """(status, why): ready, starting, draining, healing or failing."""
    if draining:
        return "draining", "the server is stopping"
    if pipeline is None:
        return "starting", "the server is starting"
    problems = pipeline.problems()
    if problems:
        return "failing", "; ".join(problems)
    if pipeline.pool.healing:
        return "healing", f"{pipeline.pool.healing} of {pipeline.pool.workers} preprocessing workers restarting"
    return "ready", ""


@router.get("/v1/model", response_model=ModelInfo, tags=["service"], summary="The model being served")
async def model_info(request: Request, recognizer: Recognizer = Depends(get_recognizer)) -> dict[str, Any]:
    meta = recognizer.metadata
    return {**model_ref(recognizer), "backend": recognizer.backend.name, "threshold": recognizer.threshold,
            "parameters": meta.get("parameters"), "test_accuracy": (meta.get("metrics") or {}).get("test_accuracy"),
            "collect": request.app.state.settings.collect_dir is not None, "metadata": meta}


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus's text format: requests, latency, batch sizes, queue depth (metrics.py)."""
    return request.app.state.metrics.page()


@router.post("/v1/predict", response_model=PredictOut, responses=ERRORS, tags=["recognise"],
             summary="The digit in one picture",
             openapi_extra=body_doc("PictureIn", {"file": FILE}, "file"))
async def predict(request: Request, include_input: bool = INCLUDE_INPUT,
                  recognizer: Recognizer = Depends(get_recognizer),
                  pipeline: Pipeline = Depends(get_pipeline)) -> Response:
    """Multipart `file`, the picture as the body (`image/png`, `image/jpeg`), or JSON `{"pixels": 28x28}` /
    `{"image": base64}`."""
    pictures = await read_pictures(request, many=False)
    [answer] = await pipeline.recognise(pictures)
    return JSONResponse({**prediction_out(answer, include_input), "model": model_ref(recognizer)})


@router.post("/v1/predict/batch", response_model=BatchOut, responses=ERRORS, tags=["recognise"],
             summary="The digit in each of many pictures, in order",
             openapi_extra=body_doc("BatchIn", {"files": {"type": "array", "items": FILE}}, "files", raw=False))
async def predict_batch(request: Request, include_input: bool = INCLUDE_INPUT,
                        recognizer: Recognizer = Depends(get_recognizer),
                        pipeline: Pipeline = Depends(get_pipeline)) -> Response:
    """Multipart `files` (repeated), or JSON `{"items": [{"pixels": ...} | {"image": ...}, ...]}`.
    One bad picture refuses the request, naming it (`files[3]`, `items[3]`)."""
    pictures = await read_pictures(request, many=True)
    answers = await pipeline.recognise(pictures)
    return await run_in_threadpool(batch_answer, answers, include_input, model_ref(recognizer))


def batch_answer(answers: list[Prediction], include_input: bool, model: dict[str, str]) -> Response:
    """The batch route's JSON (in a worker thread: 256 answers take milliseconds to write)."""
    return JSONResponse({"model": model, "predictions": [prediction_out(p, include_input) for p in answers]})


@router.post("/v1/number", response_model=NumberOut, responses=ERRORS, tags=["recognise"],
             summary="The number (several digits on one line) in a picture",
             openapi_extra=body_doc("NumberIn", {"file": FILE}, "file"))
async def number(request: Request, include_input: bool = INCLUDE_INPUT,
                 recognizer: Recognizer = Depends(get_recognizer),
                 pipeline: Pipeline = Depends(get_pipeline)) -> Response:  # admitted: see admission.py
    """Multipart `file`, the picture as the body (`image/png`, `image/jpeg`), or JSON `{"image": base64}`."""
    picture = await read_number_picture(request)
    max_pixels = request.app.state.settings.max_pixels
    # abandoned (not awaited) when the deadline passes: a reading that hangs must not hold the answer or the exit
    reading = await pipeline.bounded(to_thread.run_sync(read_number, recognizer, picture, max_pixels,
                                                        abandon_on_cancel=True))
    digits = [prediction_out(d, include_input) for d in reading.digits]
    return JSONResponse({**reading.to_dict(), "digits": digits, "model": model_ref(recognizer)})


def read_number(recognizer: Recognizer, picture: Picture, max_pixels: int) -> NumberReading:
    with checked(picture, max_pixels) as raw:
        return recognizer.read_number(raw, picture.name)


@router.post("/v1/page", response_model=PageOut, responses=ERRORS, tags=["recognise"],
             summary="Every number on a page (a form, a photo of a sheet), each with its box",
             openapi_extra=body_doc("PageIn", {"file": FILE}, "file"))
async def page(request: Request, recognizer: Recognizer = Depends(get_recognizer),
               pipeline: Pipeline = Depends(get_pipeline)) -> Response:  # admitted: see admission.py
    """Multipart `file`, the picture as the body (`image/png`, `image/jpeg`), or JSON `{"image": base64}`. A page
    without numbers answers `"numbers": []`."""
    picture = await read_number_picture(request, PageIn)
    max_pixels = request.app.state.settings.max_pixels
    # under the request deadline, as /v1/number: a page that hangs answers 504 and does not hold the exit
    reading = await pipeline.bounded(to_thread.run_sync(read_page, recognizer, picture, max_pixels,
                                                        abandon_on_cancel=True))
    return JSONResponse({**reading.to_dict(), "model": model_ref(recognizer)})


def read_page(recognizer: Recognizer, picture: Picture, max_pixels: int) -> PageReading:
    """Off the event loop: a page takes far longer than a digit (Recognizer.read_page, as the CLI)."""
    with checked(picture, max_pixels) as raw:
        return recognizer.read_page(raw, picture.name)
