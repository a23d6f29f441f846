"""The drawing page as a static site, and the model files it reads in the browser.

The page (static/) reads digits on the user's device with onnxruntime-web when it can: it fetches
`model/web.json` (what the model file says about its answers: temperature, not-a-digit threshold, the
`unsure` threshold) and `model/digit.onnx` (the float ONNX graph, uint8 pixels in, probabilities out).
`digitrec serve` answers those two paths from the model it serves (routes `web_manifest`, `web_model`);
`digitrec export MODEL --format web --out DIR` writes them as files beside a copy of the page, so any
static host serves a page that reads digits with no digitrec server at all.
"""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from digitrec.errors import DigitrecError
from digitrec.models.calibration import not_digit_threshold, temperature

STATIC = Path(str(resources.files("digitrec") / "server" / "static"))
VENDOR = STATIC / "vendor"
MANIFEST, DIGIT_MODEL, NUMBER_MODEL = "model/web.json", "model/digit.onnx", "model/number.onnx"


def vendor_files() -> list[Path]:
    """onnxruntime-web's files (`make web-vendor`), as SHA256SUMS lists them; [] when any is missing."""
    sums = VENDOR / "SHA256SUMS"
    names = [line.split()[-1] for line in sums.read_text().splitlines() if line.strip()] if sums.is_file() else []
    files = [VENDOR / n for n in names]
    return files if files and all(f.is_file() for f in files) else []


def web_onnx(model_file: str | Path) -> tuple[bytes, dict[str, Any]]:
    """(float ONNX bytes, metadata) of a model file (.safetensors, or an .onnx exported by digitrec), for
    onnxruntime-web. A model the ONNX exporter cannot take is a one-line error."""
    from digitrec.inference.onnx_backend import read_onnx
    from digitrec.interop.export import onnx_bytes_for
    from digitrec.models.modelfile import load_model

    path = Path(model_file)
    if path.suffix == ".onnx":
        data, meta = read_onnx(path)
        if (meta.get("export") or {}).get("quantize"):
            raise DigitrecError(f"{path}: an int8 ONNX model; the page needs the float one (export --format onnx)")
        return data, meta
    if path.suffix == ".pt":
        raise DigitrecError(f"{path}: a TorchScript export runs only in torch; give the .safetensors model file")
    model, meta = load_model(path)
    try:
        return onnx_bytes_for(model, meta), meta
    except DigitrecError:
        raise
    except Exception as exc:  # noqa: BLE001 - any exporter failure means: not runnable in the browser
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise DigitrecError(f"{path}: cannot be exported to ONNX for the browser ({first})") from None


def number_onnx() -> bytes | None:
    """The shipped line reader (number mode) as ONNX: float32 (1, 1, 32, width) line → (1, frames, 11)
    probabilities, the softmax that inference.numbers.emissions applies inside the graph; None when
    the installation has no line reader (then the page reads numbers on the server)."""
    import io
    import warnings

    import torch

    from digitrec.models.modelfile import load_model, shipped_number_reader_path

    path = shipped_number_reader_path()
    if not path.is_file():
        return None
    reader = load_model(path)[0]

    class Frames(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.reader = reader

        def forward(self, line: torch.Tensor) -> torch.Tensor:
            return torch.softmax(self.reader(line).float(), -1)

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation: chosen on purpose (interop.export)
        torch.onnx.export(Frames().eval(), (torch.zeros(1, 1, 32, 64),), buf, dynamo=False, opset_version=17,
                          input_names=["line"], output_names=["frames"],
                          dynamic_axes={"line": {3: "width"}, "frames": {1: "frames"}})
    return buf.getvalue()


def manifest(meta: dict[str, Any], unsure_below: float, server: bool, collect: bool = False,
             vendor: bool = True, numbers: bool = True) -> dict[str, Any]:
    """model/web.json: what the page needs to answer as `digitrec predict` does (models.calibration)."""
    return {"digit": {"file": "digit.onnx", "name": str(meta.get("arch", "unknown")),
                      "version": str(meta.get("weights_sha256", "unknown"))[:12],
                      "test_accuracy": (meta.get("metrics") or {}).get("test_accuracy"),
                      "temperature": temperature(meta), "not_digit_threshold": not_digit_threshold(meta)},
            "number": {"file": "number.onnx"} if numbers else None,  # the line reader, when installed
            "unsure_below": unsure_below, "server": server, "collect": collect, "vendor": vendor}


def export_site(model_file: str | Path, out: str | Path, unsure_below: float) -> list[tuple[str, int]]:
    """Write the page, its scripts, onnxruntime-web and the model into `out` (a new or empty folder).
    Returns (path inside `out`, bytes) for every file written."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DigitrecError(f"{out}: exists and is not an empty folder", field="out")
    vendor = vendor_files()
    if not vendor:
        raise DigitrecError(f"{VENDOR}: onnxruntime-web's files are missing (run `make web-vendor`)")
    data, meta = web_onnx(model_file)  # before anything is written: a bad model leaves no half site
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "static" / "vendor").mkdir(parents=True)
    (tmp / "model").mkdir()
    shutil.copy2(STATIC / "index.html", tmp / "index.html")
    for page_file in STATIC.glob("*.*"):
        if page_file.name != "index.html":
            shutil.copy2(page_file, tmp / "static" / page_file.name)
    for f in vendor:
        shutil.copy2(f, tmp / "static" / "vendor" / f.name)
    (tmp / DIGIT_MODEL).write_bytes(data)
    reader = number_onnx()
    if reader is not None:
        (tmp / NUMBER_MODEL).write_bytes(reader)
    (tmp / MANIFEST).write_text(json.dumps(manifest(meta, unsure_below, server=False, numbers=reader is not None),
                                           indent=1))
    if out.exists():
        out.rmdir()
    tmp.rename(out)
    return sorted((str(p.relative_to(out)), p.stat().st_size) for p in out.rglob("*") if p.is_file())


# --- the same two files, answered by `digitrec serve` for the model it serves ---

router = APIRouter(include_in_schema=False)


def served_onnx(request: Request) -> tuple[bytes, dict[str, Any]]:
    """The served model as the page's ONNX graph, exported once (about 0.1 s) on the first ask."""
    state = request.app.state
    if getattr(state, "web_onnx", None) is None:
        recognizer = state.recognizer
        if recognizer is None or recognizer.path is None:
            raise DigitrecError("the served model was not loaded from a file: the page reads on the server")
        state.web_onnx = web_onnx(recognizer.path)
    return state.web_onnx


@router.get("/" + MANIFEST)
async def web_manifest(request: Request) -> JSONResponse:
    settings, recognizer = request.app.state.settings, request.app.state.recognizer
    from digitrec.models.modelfile import shipped_number_reader_path

    body = manifest(recognizer.metadata, recognizer.threshold, server=True, collect=settings.collect_dir is not None,
                    vendor=bool(vendor_files()), numbers=shipped_number_reader_path().is_file())
    return JSONResponse(body, headers={"Cache-Control": "no-cache"})


@router.get("/" + NUMBER_MODEL)
async def web_number_model(request: Request) -> Response:
    import asyncio

    state = request.app.state
    if getattr(state, "web_number_onnx", None) is None:
        state.web_number_onnx = await asyncio.to_thread(number_onnx) or b""
    if not state.web_number_onnx:
        return JSONResponse({"detail": "this installation has no line reader"}, status_code=404)
    return Response(state.web_number_onnx, media_type="application/octet-stream",
                    headers={"Cache-Control": "no-cache"})


@router.get("/" + DIGIT_MODEL)
async def web_model(request: Request) -> Response:
    import asyncio

    data, _ = await asyncio.to_thread(served_onnx, request)
    return Response(data, media_type="application/octet-stream", headers={"Cache-Control": "no-cache"})
