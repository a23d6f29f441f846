"""The starting projects' architectures in Keras 3, shared by the import tests and bench/keras_roundtrip.py.

Keras runs on the PyTorch backend (set before keras is imported): it is a
test-only dependency, never imported by digitrec itself.
"""

from __future__ import annotations

import os

os.environ["KERAS_BACKEND"] = "torch"
import keras  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from keras import layers as L  # noqa: E402

ARCHS = ("conv2-fc64", "conv1-fc128", "conv1-fc64x2", "conv2-fc128")  # projects A, B, C, E


def starting_layers(arch: str) -> list:
    """The layers after the 28x28x1 input, as the table in DESIGN.md gives them."""
    if arch == "conv2-fc64":  # A: logits out
        return [L.Conv2D(32, (3, 3), activation="relu"), L.MaxPooling2D((2, 2)),
                L.Conv2D(64, (3, 3), activation="relu"),
                L.MaxPooling2D((2, 2)), L.Flatten(), L.Dense(64, activation="relu"), L.Dense(10)]
    if arch == "conv1-fc128":  # B
        return [L.Conv2D(28, (3, 3), activation="relu"), L.MaxPooling2D((2, 2)), L.Flatten(),
                L.Dense(128, activation="relu"), L.Dense(10, activation="softmax")]
    if arch == "conv1-fc64x2":  # C
        return [L.Conv2D(64, (3, 3), activation="relu"), L.Flatten(), L.Dense(64, activation="relu"),
                L.Dense(64, activation="relu"), L.Dense(10, activation="softmax")]
    assert arch == "conv2-fc128"  # E
    return [L.Conv2D(32, (3, 3), activation="relu"), L.MaxPooling2D((2, 2)), L.Conv2D(64, (3, 3), activation="relu"),
            L.MaxPooling2D((2, 2)), L.Flatten(), L.Dense(128, activation="relu"), L.Dense(10, activation="softmax")]


def train_keras(arch: str, images: np.ndarray, labels: np.ndarray, epochs: int = 1, seed: int = 0):
    """Build `arch` and fit it like the projects do: pixel/255, Adam, sparse CE, batch 64."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((28, 28, 1)), *starting_layers(arch)], name=arch.replace("-", "_"))
    logits = model.layers[-1].get_config()["activation"] != "softmax"
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=logits))
    model.fit(images[..., None].astype("float32") / 255.0, labels, epochs=epochs, batch_size=64, verbose=0)
    return model


def keras_proba(model, images: np.ndarray, scale: float = 1 / 255) -> np.ndarray:
    """Keras' probabilities for uint8 (N, 28, 28) digits: softmax applied when the model outputs logits."""
    out = np.asarray(model.predict(images[..., None].astype("float32") * np.float32(scale), verbose=0))
    if model.layers[-1].get_config().get("activation") == "softmax" or isinstance(model.layers[-1], L.Softmax):
        return out
    return torch.softmax(torch.from_numpy(out), dim=1).numpy()
