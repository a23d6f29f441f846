"""`digitrec models`: every registered model with its parameter count."""

from digitrec.models import count_parameters, create_model, describe, list_models


def add_parser(sub) -> None:
    p = sub.add_parser("models", help="list the registered models")
    p.set_defaults(run=run)


def run(args) -> int:
    names = list_models()
    width = max(len(n) for n in names)
    for name in names:
        print(f"{name:<{width}}  {count_parameters(create_model(name)):>10,}  {describe(name)}")
    return 0
