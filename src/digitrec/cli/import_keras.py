"""`digitrec import-keras FILE --out MODEL`: a starting project's Keras model → a digitrec model file."""

from __future__ import annotations

from pathlib import Path

from digitrec.errors import DigitrecError
from digitrec.models import count_parameters
from digitrec.models.modelfile import save_model
from digitrec.util.files import check_writable_file


def add_parser(sub) -> None:
    p = sub.add_parser("import-keras", help="convert a Keras model (.keras or .h5) into a digitrec model file")
    p.add_argument("file", help="a Keras model file: .keras (Keras 3) or .h5 (legacy)")
    p.add_argument("--out", default=None, help="digitrec model file to write (default FILE with .safetensors)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.set_defaults(run=run)


def run(args) -> int:
    # h5py loads only for this command
    from digitrec.interop.keras_import import import_keras

    out = Path(args.out) if args.out else Path(args.file).with_suffix(".safetensors")
    check_writable_file(out, "out")
    if out.exists() and not args.overwrite:
        raise DigitrecError(f"{out}: already exists; use --overwrite to replace it")
    imported = import_keras(args.file)
    keras = imported.keras
    save_model(imported.model, out, {
        "source": {"kind": "keras", "file": str(keras.path), "sha256": keras.sha256, "format": keras.file_format,
                   "keras_version": keras.keras_version, "keras_backend": keras.backend,
                   "model_class": keras.model_class},
        "input_scaling": imported.scaling,
        "parameters": count_parameters(imported.model),
    })
    print(f"{keras.path}: Keras {keras.keras_version} {keras.model_class} = {imported.arch} "
          f"({count_parameters(imported.model):,} parameters); input {imported.scaling['keras_input']}")
    print(f"wrote {out}")
    return 0
