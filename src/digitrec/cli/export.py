"""`digitrec export MODEL --format onnx|torchscript|web`: a model file for other runtimes, or (web) the
drawing page as a static site that reads digits in the browser."""

from __future__ import annotations

from pathlib import Path

from digitrec.errors import DigitrecError
from digitrec.interop.export import DEFAULT_OPSET, FORMATS, calibration_images, check_options, default_out, export_file
from digitrec.util.files import check_writable_file


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export a model file to ONNX (float or int8), TorchScript, or a static web site")
    p.add_argument("model", help="a digitrec model file (.safetensors)")
    p.add_argument("--format", default="onnx", help=f"{' | '.join(FORMATS)} | web (default onnx)")
    p.add_argument("--out", default=None, help="output file (default beside the model: .onnx, .int8.onnx, .pt); "
                   "for web, a new or empty folder (default: web/ beside the model)")
    p.add_argument("--quantize", default=None, metavar="int8",
                   help="static int8 quantisation (ONNX only), calibrated on training images")
    p.add_argument("--calibration-images", type=int, default=500, metavar="N",
                   help="training images for int8 calibration (default 500)")
    p.add_argument("--data", default=None, help="calibration data: MNIST training images (default), .csv, .npz, folder")
    p.add_argument("--data-dir", default=None, help="folder of the MNIST IDX files ($DIGITREC_DATA)")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET,
                   help=f"ONNX opset, at least 17 (default {DEFAULT_OPSET})")
    p.set_defaults(run=run)


def run(args) -> int:
    if args.format == "web":
        return run_web(args)
    check_options(args.format, args.quantize, args.opset)  # before any calibration data is read
    check_writable_file(args.out or default_out(Path(args.model), args.format, args.quantize), "out")
    calibration = None
    if args.quantize == "int8" and args.format == "onnx":
        calibration = calibration_images(args.calibration_images, args.data, args.data_dir)
    path = export_file(args.model, args.format, args.out, args.quantize, args.opset, calibration)
    print(f"wrote {path} ({path.stat().st_size:,} bytes)")
    return 0


def run_web(args) -> int:
    """The page, its scripts, onnxruntime-web and the model in one folder: any static host serves it."""
    from digitrec.inference.recognizer import DEFAULT_THRESHOLD
    from digitrec.server.site import export_site

    if args.quantize:
        raise DigitrecError("the web site reads with the float model: leave out --quantize", field="quantize")
    out = Path(args.out) if args.out else Path(args.model).with_name("web")
    files = export_site(args.model, out, DEFAULT_THRESHOLD)
    for name, size in files:
        print(f"{size:>12,}  {name}")
    print(f"{sum(size for _, size in files):>12,}  in all: {out}/ (open it from any static host, "
          f"e.g. python -m http.server -d {out})")
    return 0
