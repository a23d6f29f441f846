"""The JSON metadata an exported model carries, and the names of its input and output.

Its own module because both the exporter (`export`) and the int8 quantiser (`int8`) read and
write it, and the quantiser must not import the exporter that calls it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from digitrec.errors import DigitrecError
from digitrec.models.modelfile import versions

INPUT_NAME, OUTPUT_NAME = "images", "probabilities"
META_KEY = "digitrec"  # metadata_props key / _extra_files name holding the JSON metadata


def export_metadata(meta: dict[str, Any], fmt: str, **details: Any) -> dict[str, Any]:
    """The model file's metadata plus what the export changed: format, I/O contract, versions."""
    import onnx
    import onnxruntime

    info = {"format": fmt, "input": f"{INPUT_NAME}: uint8 (batch, 28, 28), ink bright, background 0",
            "output": f"{OUTPUT_NAME}: float32 (batch, 10) class probabilities",
            "versions": {**versions(), "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}, **details}
    return {**meta, "export": info}


def set_onnx_metadata(proto, meta: dict[str, Any]) -> None:
    """Store `meta` as JSON under metadata_props["digitrec"] (replacing any earlier value)."""
    props = [p for p in proto.metadata_props if p.key != META_KEY]
    del proto.metadata_props[:]
    proto.metadata_props.extend(props)
    entry = proto.metadata_props.add()
    entry.key, entry.value = META_KEY, json.dumps(meta)
    proto.producer_name = "digitrec"


def onnx_metadata(proto, source: str | Path = "model") -> dict[str, Any]:
    """The digitrec metadata of an ONNX model (one-line error when it has none)."""
    for prop in proto.metadata_props:
        if prop.key == META_KEY:
            try:
                return json.loads(prop.value)
            except ValueError:
                raise DigitrecError(f"{source}: ONNX metadata_props[{META_KEY!r}] is not valid JSON") from None
    raise DigitrecError(f"{source}: ONNX model without digitrec metadata (not exported by digitrec?)")
