"""Files → `Dataset`: readers for every format digitrec accepts, MNIST download, the split, augmentation.

The names below are the room's public face (the tutorial and the tests import them from here);
the rest of digitrec imports the modules themselves.
"""

from digitrec.data.dataset import (
    DEFAULT_VAL_SIZE,
    SPLITS,
    Dataset,
    default_data_dir,
    load,
    load_mnist,
    mnist_checksums,
    train_val_split,
)

__all__ = ["DEFAULT_VAL_SIZE", "SPLITS", "Dataset", "default_data_dir", "load", "load_mnist", "mnist_checksums",
           "train_val_split"]
