"""The HTTP API's routes: /v1/predict, /v1/predict/batch, /v1/number, /v1/model, /healthz.

Each picture route takes either multipart/form-data (uploaded files) or JSON
(`api_schemas.PictureIn` and friends). FastAPI cannot declare "this or that"
bodies, so the routes read the body themselves (`pictures.py`) and the two forms
are documented in /openapi.json by hand (`register_body_schemas`). Decoding and
inference run in worker threads, off the event loop.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from PIL import Image

from digitrec.errors import DigitrecError
from digitrec.inference.recognizer import NumberReading, Prediction, Recognizer
from digitrec.server.bodies import Picture, bad_image, checked, read_number_picture, read_pictures, source
from digitrec.server.schemas import (
    BODY_MODELS,
    BatchOut,
    ErrorOut,
    Health,
    ModelInfo,
    NumberOut,
    PredictOut,
)

router = APIRouter()

FILE = {"type": "string", "format": "binary"}
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "broken upload: empty, truncated or corrupt picture, invalid JSON"},
    413: {"model": ErrorOut, "description": "body over the size cap, picture over the pixel cap, too many pictures"},
    415: {"model": ErrorOut, "description": "not a picture, or a body that is neither JSON nor multipart"},
    422: {"model": ErrorOut, "description": "wrong fields, shapes or types"},
}
INCLUDE_INPUT = Query(False, description="also return the 28x28 picture the model saw (base64 PNG)")


def body_doc(json_model: str, files: dict[str, Any], required: str) -> dict[str, Any]:
    """openapi_extra for a route that takes either JSON (`json_model`) or multipart `files`."""
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": {"$ref": f"#/components/schemas/{json_model}"}},
        "multipart/form-data": {"schema": {"type": "object", "properties": files, "required": [required]}}}}}


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


def get_recognizer(request: Request) -> Recognizer:
    """The recogniser loaded at start-up (server.lifespan)."""
    return request.app.state.recognizer


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


@router.get("/healthz", response_model=Health, tags=["service"], summary="The server is up and its model loaded")
async def healthz(recognizer: Recognizer = Depends(get_recognizer)) -> dict[str, Any]:
    return {"status": "ok", "model": model_ref(recognizer)}


@router.get("/v1/model", response_model=ModelInfo, tags=["service"], summary="The model being served")
async def model_info(recognizer: Recognizer = Depends(get_recognizer)) -> dict[str, Any]:
    meta = recognizer.metadata
    return {**model_ref(recognizer), "backend": recognizer.backend.name, "threshold": recognizer.threshold,
            "parameters": meta.get("parameters"), "test_accuracy": (meta.get("metrics") or {}).get("test_accuracy"),
            "metadata": meta}


@router.post("/v1/predict", response_model=PredictOut, responses=ERRORS, tags=["recognise"],
             summary="The digit in one picture",
             openapi_extra=body_doc("PictureIn", {"file": FILE}, "file"))
async def predict(request: Request, include_input: bool = INCLUDE_INPUT,
                  recognizer: Recognizer = Depends(get_recognizer)) -> dict[str, Any]:
    """Multipart `file`, or JSON `{"pixels": 28x28}` / `{"image": base64}`."""
    pictures = await read_pictures(request, many=False)
    max_pixels = request.app.state.settings.max_pixels
    [answer] = await run_in_threadpool(recognise, recognizer, pictures, max_pixels)
    return {**prediction_out(answer, include_input), "model": model_ref(recognizer)}


@router.post("/v1/predict/batch", response_model=BatchOut, responses=ERRORS, tags=["recognise"],
             summary="The digit in each of many pictures, in order",
             openapi_extra=body_doc("BatchIn", {"files": {"type": "array", "items": FILE}}, "files"))
async def predict_batch(request: Request, include_input: bool = INCLUDE_INPUT,
                        recognizer: Recognizer = Depends(get_recognizer)) -> dict[str, Any]:
    """Multipart `files` (repeated), or JSON `{"items": [{"pixels": ...} | {"image": ...}, ...]}`.
    One bad picture refuses the request, naming it (`files[3]`, `items[3]`)."""
    pictures = await read_pictures(request, many=True)
    max_pixels = request.app.state.settings.max_pixels
    answers = await run_in_threadpool(recognise, recognizer, pictures, max_pixels)
    return {"model": model_ref(recognizer), "predictions": [prediction_out(p, include_input) for p in answers]}


@router.post("/v1/number", response_model=NumberOut, responses=ERRORS, tags=["recognise"],
             summary="The number (several digits on one line) in a picture",
             openapi_extra=body_doc("NumberIn", {"file": FILE}, "file"))
async def number(request: Request, include_input: bool = INCLUDE_INPUT,
                 recognizer: Recognizer = Depends(get_recognizer)) -> dict[str, Any]:
    """Multipart `file`, or JSON `{"image": base64}`."""
    picture = await read_number_picture(request)
    max_pixels = request.app.state.settings.max_pixels
    reading = await run_in_threadpool(read_number, recognizer, picture, max_pixels)
    digits = [prediction_out(d, include_input) for d in reading.digits]
    return {**reading.to_dict(), "digits": digits, "model": model_ref(recognizer)}


def recognise(recognizer: Recognizer, pictures: list[Picture], max_pixels: int) -> list[Prediction]:
    """`Recognizer.predict_many`, as the CLI calls it: every picture decoded and preprocessed, one model
    call for all (in a worker thread). One bad picture refuses the request, naming it."""
    answers = recognizer.predict_many([source(p, max_pixels) for p in pictures], [p.name for p in pictures])
    for picture, answer in zip(pictures, answers):
        if isinstance(answer, DigitrecError):
            raise bad_image(picture, answer)
    return answers  # type: ignore[return-value]


def read_number(recognizer: Recognizer, picture: Picture, max_pixels: int) -> NumberReading:
    with checked(picture, max_pixels) as raw:
        return recognizer.read_number(raw, picture.name)
