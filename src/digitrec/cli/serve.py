"""`digitrec serve`: the recogniser over HTTP (FastAPI under uvicorn) with a page to draw digits on."""

from __future__ import annotations

from pathlib import Path

from digitrec.errors import DigitrecError


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="serve the recogniser over HTTP, with a page to draw digits on")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    p.add_argument("--model", default=None, help="model file (default: the model shipped with digitrec)")
    p.add_argument("--backend", default="torch", help="inference backend: torch (default) or onnx")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads per inference (default 1)")
    p.add_argument("--threshold", type=float, default=None, help="answers below this probability are unsure (0.6)")
    p.add_argument("--max-upload-mb", type=float, default=10.0, help="largest request body, MB (default 10)")
    p.add_argument("--max-pixels", type=int, default=None, help="largest picture, pixels (default 16,000,000)")
    p.add_argument("--max-batch", type=int, default=None, help="most pictures per batch request (default 256)")
    p.add_argument("--log-level", default="info", help="uvicorn's log level (default info)")
    p.set_defaults(run=run)


def settings_from(args):
    """The command's options → server.Settings; a bad value is a one-line DigitrecError."""
    from pydantic import ValidationError

    from digitrec.server.app import Settings

    given = {"model_file": Path(args.model) if args.model else None, "backend": args.backend, "device": args.device,
             "threshold": args.threshold, "threads": args.threads, "max_pixels": args.max_pixels,
             "max_batch": args.max_batch, "max_upload_bytes": int(args.max_upload_mb * 1024 * 1024)}
    try:
        return Settings(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        message = first["ctx"]["error"] if first["type"] == "value_error" else first["msg"]  # ours, unprefixed
        raise DigitrecError(str(message), field=str(first["loc"][0])) from None


def run(args) -> int:
    import uvicorn

    from digitrec.server.app import create_app, load_recognizer

    if not 0 <= args.port <= 65535:
        raise DigitrecError(f"must be 0..65535, got {args.port}", field="port")
    settings = settings_from(args)
    recognizer = load_recognizer(settings)  # here, so a bad --model or --backend is a one-line error
    print(f"digitrec: serving {args.model or 'the default model'} on http://{args.host}:{args.port}/ "
          "(API docs at /docs)", flush=True)
    uvicorn.run(create_app(settings, recognizer), host=args.host, port=args.port, log_level=args.log_level)
    return 0
