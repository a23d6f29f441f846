"""Synthetic training pictures, made once and cached: non-digits, and digits in the world's styles.

Drawing a non-digit takes a few milliseconds (fonts, warps, rendering), so the banks are drawn once
per size and seed, spread over the usable cores, and kept under the cache folder
(~/.cache/digitrec/synthetic); a second run, or another seed of the same recipe, reads them back.
The random stream of each bank is fixed by its seed and chunk, so the pictures do not depend on
how many cores drew them.
"""

from __future__ import annotations

import hashlib
import io
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from digitrec.data.dataset import Dataset
from digitrec.data.fonts import Font, fonts_checksum
from digitrec.synth import nondigits, styles, writers
from digitrec.util import NOT_A_DIGIT
from digitrec.util.files import atomic_write
from digitrec.util.system import cache_dir, usable_cores

VERSION = 1  # of what synth.nondigits and synth.styles draw: a change must not reuse old banks
CHUNK = 500  # pictures per random stream (and per worker task)
FRAGMENT_POOL = 4000  # real digits handed to the workers for the overlapping-digit fragments


def _key(*parts: object) -> str:
    return hashlib.sha256(repr((VERSION, *parts)).encode()).hexdigest()[:16]


def _cached(name: str) -> Path:
    return cache_dir() / "synthetic" / f"{name}.npz"


def _load(path: Path) -> np.ndarray | None:
    try:
        with np.load(path) as archive:
            return archive["images"]
    except (OSError, ValueError, KeyError):
        return None  # absent, or damaged: draw it again


def _save(path: Path, images: np.ndarray) -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, images=images)
    atomic_write(path, buf.getvalue())


def _drawn(draw, jobs: list) -> np.ndarray:
    """`draw` over the chunks' jobs, spread over the usable cores, concatenated in the jobs' order."""
    workers = min(len(jobs), usable_cores())
    if workers > 1:
        with ProcessPoolExecutor(workers) as ex:
            return np.concatenate(list(ex.map(draw, jobs)))
    return np.concatenate([draw(job) for job in jobs])


def _draw_chunk(args: tuple[int, int, np.ndarray, tuple[str, ...]]) -> np.ndarray:
    n, seed, digits, families = args
    return nondigits.non_digits(n, np.random.default_rng(seed), digits, families)[0]


def nondigit_bank(n: int, source: Dataset, seed: int = 0, families: tuple[str, ...] = nondigits.TRAIN_FAMILIES,
                  tag: str = "train") -> Dataset:
    """`n` non-digits labelled NOT_A_DIGIT; their fragments are cut from `source`'s digits (use the same
    split as the digits they are mixed with: the validation bank from validation digits)."""
    if n <= 0:
        return Dataset(np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.int64), f"non-digits:{tag}")
    path = _cached(f"nondigits-{tag}-{n}-{_key(n, seed, families, source.checksum())}")
    images = _load(path)
    if images is None or len(images) != n:
        pool = source.images[np.random.default_rng(seed).permutation(len(source))[:FRAGMENT_POOL]]
        jobs = [(min(CHUNK, n - start), seed * 100_003 + k, pool, families)
                for k, start in enumerate(range(0, n, CHUNK))]
        images = _drawn(_draw_chunk, jobs)
        _save(path, images)
    return Dataset(images, np.full(n, NOT_A_DIGIT, np.int64), f"non-digits:{tag}")


def styled_bank(n: int, source: Dataset, seed: int = 0, tag: str = "train") -> Dataset:
    """About `n` digits of `source` redrawn with the world's writing habits (synth.styles), an equal
    share per habit, labelled with their digit."""
    per_habit = n // len(styles.HABITS)
    if per_habit <= 0:
        return Dataset(np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.int64), f"styled:{tag}")
    path = _cached(f"styled-{tag}-{n}-{_key(n, seed, source.checksum())}")
    images = _load(path)
    rng = np.random.default_rng(seed)
    labels = np.concatenate([np.full(min(per_habit, int((source.labels == label).sum())), label)
                             for label, _ in styles.HABITS.values()]).astype(np.int64)
    if images is None or len(images) != len(labels):
        images, labels = styles.restyled_bank(source.images, source.labels, per_habit, rng)
        _save(path, images)
    return Dataset(images, labels, f"styled:{tag}")



def _draw_font_chunk(args: tuple[int, int, list[Font], bool]) -> np.ndarray:
    n, seed, fonts, letters = args
    rng = np.random.default_rng(seed)
    return writers.font_letters(n, fonts, rng) if letters else writers.font_digits(n, fonts, rng)[0]


def font_bank(n: int, fonts: list[Font], seed: int = 0, tag: str = "train", letters: float = 0.0) -> Dataset:
    """`n` pictures written by `fonts` (synth.writers): digits labelled with their digit, and a share
    `letters` of letters labelled NOT_A_DIGIT (for a model that can say "not a digit")."""
    n_letters = int(round(letters * n))
    parts = []
    for kind, count in (("digits", n - n_letters), ("letters", n_letters)):
        if count <= 0:
            continue
        path = _cached(f"fonts-{kind}-{tag}-{count}-{_key(count, seed, kind, fonts_checksum(fonts))}")
        images = _load(path)
        if images is None or len(images) != count:
            jobs = [(min(CHUNK, count - start), seed * 100_019 + k + (kind == "letters") * 7_777, fonts,
                     kind == "letters") for k, start in enumerate(range(0, count, CHUNK))]
            images = _drawn(_draw_font_chunk, jobs)
            _save(path, images)
        labels = (np.full(count, NOT_A_DIGIT) if kind == "letters"
                  else np.concatenate([np.arange(min(CHUNK, count - s)) % 10 for s in range(0, count, CHUNK)]))
        parts.append(Dataset(images, labels.astype(np.int64), f"fonts:{tag}"))
    if not parts:
        return Dataset(np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.int64), f"fonts:{tag}")
    return parts[0].concat(*parts[1:], source=f"fonts:{tag}") if len(parts) > 1 else parts[0]
