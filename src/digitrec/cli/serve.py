"""`digitrec serve`: the recogniser over HTTP (FastAPI under uvicorn) with a page to draw digits on."""

from __future__ import annotations

from pathlib import Path

from digitrec.errors import DigitrecError


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="serve the recogniser over HTTP, with a page to draw digits on")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    p.add_argument("--model", default=None, help="model file (default: the model shipped with digitrec)")
    p.add_argument("--backend", default=None, help="inference backend: onnx (default), torch or onnx-int8")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--threads", type=int, default=None, help="the model's CPU threads (default 1)")
    p.add_argument("--threshold", type=float, default=None, help="answers below this probability are unsure (0.6)")
    p.add_argument("--max-upload-mb", type=float, default=10.0, help="largest request body, MB (default 10)")
    p.add_argument("--max-pixels", type=int, default=None, help="largest picture, pixels (default 16,000,000)")
    p.add_argument("--max-batch", type=int, default=None, help="most pictures per batch request (default 256)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="most digits the model reads in one call, from concurrent requests (default 64)")
    p.add_argument("--batch-wait-ms", type=float, default=None,
                   help="longest a ready digit waits for others still being preprocessed (default 0: measured best)")
    p.add_argument("--max-queue", type=int, default=None,
                   help="requests inside the server at once; more are answered 503 with Retry-After (default 64)")
    p.add_argument("--max-wait-ms", type=float, default=None,
                   help="refuse (503) a request that would wait longer than this for the pictures ahead of it, "
                        "at the rate the server answers (default 250; 0: --max-queue alone)")
    p.add_argument("--workers", type=int, default=None,
                   help="preprocessing processes (default: one per usable CPU core)")
    p.add_argument("--collect", default=None, metavar="DIR",
                   help="enable POST /v1/collect and the page's teach panel: labelled pictures saved in DIR/<digit>/")
    p.add_argument("--request-timeout", type=float, default=None,
                   help="a request's deadline in seconds: past it the answer is 504, and a preprocessing worker "
                        "that held its pictures that long is killed and replaced (default 30)")
    p.add_argument("--drain", type=float, default=0.0, metavar="SECONDS",
                   help="on SIGTERM, keep serving this long while /readyz answers 503, so that a load balancer "
                        "stops sending traffic first (default 0)")
    p.add_argument("--shutdown-timeout", type=float, default=30.0,
                   help="on SIGTERM/Ctrl+C (after --drain), seconds to finish the requests in flight; those left "
                        "are answered 503 (default 30)")
    p.add_argument("--log-level", default="info", help="uvicorn's log level (default info)")
    p.set_defaults(run=run)


def settings_from(args):
    """The command's options → server.app.Settings; a bad value is a one-line DigitrecError."""
    from pydantic import ValidationError

    from digitrec.server.app import Settings
    from digitrec.util.files import check_writable_dir

    collect = check_writable_dir(args.collect, field="collect") if args.collect else None
    given = {"model_file": Path(args.model) if args.model else None, "backend": args.backend, "device": args.device,
             "threshold": args.threshold, "threads": args.threads, "max_pixels": args.max_pixels,
             "max_batch": args.max_batch, "max_upload_bytes": int(args.max_upload_mb * 1024 * 1024),
             "batch_size": args.batch_size, "batch_wait_ms": args.batch_wait_ms, "max_queue": args.max_queue,
             "max_wait_ms": args.max_wait_ms, "workers": args.workers, "collect_dir": collect,
             "request_timeout_s": args.request_timeout}
    try:
        return Settings(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        message = first["ctx"]["error"] if first["type"] == "value_error" else first["msg"]  # ours, unprefixed
        raise DigitrecError(str(message), field=str(first["loc"][0])) from None


def run(args) -> int:
    from digitrec.server.app import create_app, load_recognizer
    from digitrec.server.lifecycle import Server

    if not 0 <= args.port <= 65535:
        raise DigitrecError(f"must be 0..65535, got {args.port}", field="port")
    for field in ("shutdown_timeout", "drain"):
        if getattr(args, field) < 0:
            raise DigitrecError(f"must be at least 0, got {getattr(args, field)}", field=field)
    settings = settings_from(args)
    recognizer = load_recognizer(settings)  # here, so a bad --model or --backend is a one-line error
    collecting = f"; saving taught pictures in {settings.collect_dir}" if settings.collect_dir else ""
    print(f"digitrec: serving {args.model or 'the shipped model'} ({recognizer.backend.name}) on "
          f"http://{args.host}:{args.port}/ (API docs at /docs){collecting}", flush=True)
    server = Server(create_app(settings, recognizer), drain_s=args.drain, grace_s=args.shutdown_timeout,
                    host=args.host, port=args.port, log_level=args.log_level)
    try:
        server.run()
    finally:
        leave_stuck_threads()
    return 0


def leave_stuck_threads() -> None:
    """Exit now if a thread still runs (a model call that hangs: threads cannot be killed), instead of
    Python waiting for it at exit for ever; the answers were all written by now."""
    import os
    import sys
    import threading

    others = [t for t in threading.enumerate() if t is not threading.current_thread() and not t.daemon]
    for thread in others:  # idle pool threads are on their way out
        thread.join(timeout=0.5)
    stuck = [t.name for t in others if t.is_alive()]
    if stuck:
        print(f"digitrec: leaving {len(stuck)} busy threads behind ({', '.join(stuck)})", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(0)
