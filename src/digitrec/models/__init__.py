"""Networks, the registry that names them, the wrappers around them and the model file.

Importing this package registers every network (`networks`, `wrappers`), so
`create_model(name)` knows them all. The names below are the room's public face.
"""

from digitrec.models import networks, wrappers  # noqa: F401  (registration)
from digitrec.models.layers import MNIST_MEAN, MNIST_STD, Dropout, Normalize
from digitrec.models.networks import DEFAULT_NETWORK
from digitrec.models.registry import (
           count_parameters,
           create_model,
           describe,
           list_models,
           reads,
           register_model,
)
from digitrec.models.summary import summary
from digitrec.models.wrappers import TTA_VIEWS, with_tta

__all__ = ["DEFAULT_NETWORK", "MNIST_MEAN", "MNIST_STD", "TTA_VIEWS", "Dropout", "Normalize", "count_parameters",
           "create_model", "describe", "list_models", "reads", "register_model", "summary", "with_tta"]
