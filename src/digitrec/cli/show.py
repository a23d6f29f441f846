"""`digitrec show`: a grid of dataset samples with their labels, from any source digitrec reads."""

from __future__ import annotations

from digitrec.data import dataset as datamod
from digitrec.errors import DigitrecError
from digitrec.pictures.folders import load_data
from digitrec.report.plots import plot_samples
from digitrec.util.files import check_writable_file

MAX_N = 400  # 20 x 20 digits: about 2100 x 2500 pixels, as big as one picture should get


def add_parser(sub) -> None:
    p = sub.add_parser("show", help="draw a grid of dataset digits with their labels (PNG)")
    p.add_argument("--n", type=int, default=25, help="how many digits (default 25)")
    p.add_argument("--data", default=None, help="MNIST (default), a Kaggle .csv, a .npz or a folder")
    p.add_argument("--split", default="train", choices=datamod.SPLITS, help="default train")
    p.add_argument("--data-dir", default=None, help="folder of the MNIST IDX files ($DIGITREC_DATA)")
    p.add_argument("--out", default="samples.png", help="PNG to write (default samples.png)")
    p.set_defaults(run=run)


def run(args) -> int:
    if not 1 <= args.n <= MAX_N:
        raise DigitrecError(f"must be between 1 and {MAX_N} (one picture), got {args.n}", field="n")
    check_writable_file(args.out, "out")
    dataset = load_data(args.data, args.split, args.data_dir)
    if len(dataset) == 0:
        raise DigitrecError(f"{dataset.source}: holds no images")
    n = min(args.n, len(dataset))
    path = plot_samples(dataset.images, dataset.labels, args.out, n,
                        title=f"{dataset.source}: first {n} of {len(dataset):,}")
    print(f"{n} digits of {dataset.source} drawn to {path}")
    return 0
