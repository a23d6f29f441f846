"""`digitrec summary NAME`: a Keras-style table of layers, output shapes and parameters."""

from digitrec.models import create_model, summary


def add_parser(sub) -> None:
    p = sub.add_parser("summary", help="print a model's layers, output shapes and parameters")
    p.add_argument("name", help="registered model name (see `digitrec models`)")
    p.set_defaults(run=run)


def run(args) -> int:
    print(summary(create_model(args.name)))
    return 0
