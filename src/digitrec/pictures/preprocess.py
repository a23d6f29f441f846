"""A picture of a digit → the 28×28 array an MNIST model expects. One function, used everywhere.

MNIST digits were made from bilevel scans: size-normalised with anti-aliasing to
fit a 20×20 box (aspect kept), then placed in 28×28 so that their centre of mass
sits at the centre, light ink on black. `preprocess` repeats those steps on any
picture: it finds the ink (polarity, uneven light, specks), cuts the digit out as
a bilevel mask at a working scale, widens strokes that are much thinner than
MNIST's, and renders the mask the way MNIST did. The CLI, the Python API, the
server and `segment` (multi-digit numbers) all go through here.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from functools import reduce

import numpy as np
from PIL import Image
from scipy import ndimage as ndi

from digitrec.pictures.decode import ImageSource, describe, gray_levels, open_image, to_gray
from digitrec.util import SIDE

BOX = 20  # the digit's longer side is fitted into BOX×BOX, as in MNIST
WORK = 80  # the digit mask is handled at this longer side (4× BOX, for anti-aliasing)
# Stroke width ÷ the digit's longer side, measured on MNIST's test digits with
# `stroke_width` below (median 0.136); strokes under 75% of it are widened to it.
MNIST_STROKE = 0.136
THIN = 0.75
MIN_CONTRAST = 0.15  # ink must stand this far (0..1 grey) above the background, else blank
MIN_INK_PIXELS = 12  # fewer ink pixels than this is a blank picture with a speck
SPECK = 0.05  # ink blobs smaller than this fraction of the largest are noise
# An MNIST-style picture's background: grey levels at most this far from it count as background
# (a PNG of an MNIST digit has exactly 0 there; a lightly compressed one, a level or two)
QUIET = 8 / 255


@dataclass(frozen=True, kw_only=True)
class Preprocessed:
    """What the model will see, and what was done to get it (keyword-only: three flags share a type)."""

    image: np.ndarray  # (28, 28) uint8, ink bright on 0, digit centred by mass
    blank: bool  # no ink found: there is nothing to recognise
    inverted: bool  # the picture had dark ink on light paper
    thickened: bool  # strokes were thinner than MNIST's and were widened
    stroke: float  # estimated stroke width ÷ the digit's longer side (0 when blank)
    source: str


@dataclass(frozen=True)
class InkMap:
    """Where the ink is in a picture, at the picture's (possibly shrunk) resolution."""

    ink: np.ndarray  # (H, W) float32: background-subtracted ink, 1.0 = typical stroke
    mask: np.ndarray  # (H, W) bool: ink pixels (specks removed)
    threshold: float  # the level of `ink` that separates ink from paper
    inverted: bool
    blank: bool
    source: str

    def only(self, keep: np.ndarray) -> "InkMap":
        """The same picture with ink kept only where `keep` (H, W bool) is true."""
        return replace(self, ink=np.where(keep, self.ink, 0).astype(np.float32), mask=self.mask & keep)


def preprocess(image: ImageSource, name: str | None = None) -> Preprocessed:
    """Any picture of one digit (path, bytes, PIL image or array) → 28×28 MNIST-style uint8.

    A picture that is MNIST-style already (28×28, the digit's box 20 pixels on its longer side and
    centred by mass, nothing else in it, either polarity) is passed on as it is: redrawing it could
    only lose what MNIST's own anti-aliasing put there."""
    name = name or describe(image)
    gray, levels = gray_levels(open_image(image, name))  # (H, W) float in [0, 1]; its 8-bit levels or None
    ready = mnist_style(gray)
    if ready is not None:
        digit, inverted = ready
        return Preprocessed(image=digit, blank=False, inverted=inverted, thickened=False,
                            stroke=stroke_width(digit > 76) / BOX, source=name)
    return render_digit(ink_map(gray, name, levels, box_only=True))


def mnist_style(gray: np.ndarray) -> tuple[np.ndarray, bool] | None:
    """(the 28×28 uint8 digit, inverted) when `gray` (H, W) is an MNIST-style digit, else None."""
    if gray.shape != (SIDE, SIDE):
        return None
    inverted = float(np.median(np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]]))) > 0.5
    bright = 1.0 - gray if inverted else gray
    ink = bright > QUIET
    if not ink.any() or int(ink.sum()) < MIN_INK_PIXELS:
        return None
    rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    side = max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1
    cy, cx = ndi.center_of_mass(np.where(ink, bright, 0.0))
    if not BOX - 2 <= side <= BOX + 1 or max(abs(cy - 13.99), abs(cx - 14.0)) > 1.0:
        return None
    return (bright * 255 + 0.5).astype(np.uint8), inverted  # as it was: its faint edges are MNIST's too


def find_ink(image: ImageSource, name: str | None = None) -> InkMap:
    """Open the picture, make the ink bright, subtract the background, threshold, drop specks."""
    name = name or describe(image)
    return ink_map(to_gray(open_image(image, name)), name)


def ink_map(gray: np.ndarray, name: str, levels: np.ndarray | None = None, box_only: bool = False) -> InkMap:
    """The ink of a grey picture (H, W) float in [0, 1]: `find_ink` once the picture is open.

    `levels`: the picture's 8-bit grey levels when `gray` is exactly levels / 255 (decode.gray_levels).
    If the picture is also evenly lit, every quantity below is a function of a pixel's grey level, so
    it is computed once per level, with the same float32 operations (hence the same values), and looked
    up; `box_only` then maps only the box around the ink, all that `render_digit` reads."""
    gray_hist = histogram(levels if levels is not None else _levels(gray))
    bright, inverted = ink_bright(gray, gray_hist)
    paper = background(bright)  # in the bright-ink domain: 0 = white paper; one number when evenly lit
    per_level = levels is not None and np.ndim(paper) == 0
    if per_level:
        grays = np.arange(256, dtype=np.uint8).astype(np.float32) / 255.0  # (256,): what each level means
        bright = 1.0 - grays if inverted else grays
    flat = np.clip(flatten(bright, inverted, paper), 0.0, 1.0)  # (256,) per level, or (H, W)
    if per_level:
        hist = np.bincount(_levels(flat), weights=gray_hist, minlength=256).astype(np.int64)
    else:
        hist = histogram(_levels(flat))  # (256,) pixels per grey level
    peak = _peak(hist)
    if peak < MIN_CONTRAST:
        flat = np.take(flat, levels) if per_level else flat
        return InkMap(flat, np.zeros(flat.shape, bool), 1.0, inverted, True, name)
    threshold = float(np.clip(otsu(hist), 0.25 * peak, 0.6 * peak))
    level = _median_above(hist, threshold)  # typical stroke value
    ink = (flat / level).astype(np.float32, copy=False)
    if per_level:
        return looked_up(ink, ink > threshold / level, levels, threshold / level, inverted, name, box_only)
    mask = drop_specks(ink > threshold / level)
    blank = np.count_nonzero(mask) < MIN_INK_PIXELS
    return InkMap(ink, mask, threshold / level, inverted, blank, name)


def looked_up(ink: np.ndarray, mask: np.ndarray, levels: np.ndarray, threshold: float, inverted: bool, name: str,
              box_only: bool) -> InkMap:
    """The ink and mask of each grey level (256,) spread over the picture's levels (H, W): the whole
    picture, or with `box_only` just the box around its ink (the picture's other pixels are paper)."""
    mask = np.take(mask, levels)
    if box_only:
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        box = np.s_[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1] if len(rows) else np.s_[0:0, 0:0]
        levels, mask = levels[box], mask[box]
    mask = drop_specks(mask)
    return InkMap(np.take(ink, levels), mask, threshold, inverted, np.count_nonzero(mask) < MIN_INK_PIXELS, name)


def ink_bright(gray: np.ndarray, hist: np.ndarray | None = None) -> tuple[np.ndarray, bool]:
    """Make the ink bright. The paper's level is the median of the picture's border (mostly
    paper, wherever the digit is); the ink is the extreme farther from it. `hist`: the picture's
    histogram of grey levels, when the caller has it."""
    edge = max(1, min(gray.shape) // 50)
    border = np.concatenate([gray[:edge].ravel(), gray[-edge:].ravel(),
                             gray[:, :edge].ravel(), gray[:, -edge:].ravel()])
    hist = histogram(_levels(gray)) if hist is None else hist
    darkest = 1.0 - _peak(hist[::-1])  # the level at least MIN_INK_PIXELS pixels reach
    paper = float(np.median(border))
    inverted = paper - darkest > _peak(hist) - paper
    return (1.0 - gray if inverted else gray), bool(inverted)


def flatten(bright: np.ndarray, inverted: bool, paper: np.ndarray | np.floating | None = None) -> np.ndarray:
    """Ink above the local paper level. Dark ink on light paper is a reflectance: divide by the
    paper's local brightness (a shadow dims ink and paper alike); light ink on dark, subtract.
    `paper`: `background(bright)`, when the caller has it."""
    paper = background(bright) if paper is None else paper
    flat = bright - paper
    return flat / np.maximum(1.0 - paper, 0.05) if inverted else flat


def background(bright: np.ndarray) -> np.ndarray | np.floating:
    """Smooth estimate of the paper's level under the (bright) ink: a grey opening much wider
    than any stroke, at a coarse scale (lighting varies slowly), blurred and scaled back up.
    An evenly lit picture gets one float32 level, which `flatten` applies as it would the array."""
    h, w = bright.shape
    scale = min(1.0, 64 / max(h, w))
    small_size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = np.asarray(Image.fromarray(np.ascontiguousarray(bright, np.float32)).resize(small_size,
                                                                                          Image.Resampling.BOX))
    size = max(3, int(max(small.shape) * 0.3) | 1)  # odd, about 30% of the picture
    opened = _gaussian(ndi.grey_opening(small, size=(size, size), mode="nearest"), size / 4)
    if float(opened.max() - opened.min()) < 0.02:  # evenly lit: one level will do
        return np.float32(float(np.median(opened)))
    return np.asarray(Image.fromarray(opened.astype(np.float32)).resize((w, h), Image.Resampling.BILINEAR))


def _gaussian(image: np.ndarray, sigma: float) -> np.ndarray:
    """`ndi.gaussian_filter(image, sigma, mode="nearest")` on a 2-D float32 image, value for value: the same
    two `correlate1d` passes with the same weights, which are made once per sigma instead of every call
    (making them was most of the filter's time at 64×64)."""
    weights = _gaussian_weights(float(sigma))
    out = np.empty_like(image)
    ndi.correlate1d(image, weights, 0, out, "nearest")
    ndi.correlate1d(out, weights, 1, out, "nearest")
    return out


@functools.lru_cache(maxsize=64)
def _gaussian_weights(sigma: float) -> np.ndarray:
    """scipy's own kernel for `gaussian_filter1d` (radius: 4 sigmas), read off as its response to an impulse
    (exact: each output is one weight times 1.0 plus zeros; the kernel is symmetric)."""
    radius = int(4.0 * sigma + 0.5)
    impulse = np.zeros(2 * radius + 1)
    impulse[radius] = 1.0
    return ndi.gaussian_filter1d(impulse, sigma, mode="constant")


def _levels(values: np.ndarray) -> np.ndarray:
    """[0, 1] floats → uint8 grey levels: histograms of these are cheap (`histogram`)."""
    return (values * 255 + 0.5).astype(np.uint8)


def histogram(levels: np.ndarray) -> np.ndarray:
    """(256,) int64 pixels per grey level of a uint8 array. Pillow counts uint8 pixels in one pass,
    about twice as fast as np.bincount, which first widens every pixel to 64 bits."""
    counts = Image.fromarray(np.ascontiguousarray(levels, np.uint8)).histogram()  # (H, W) uint8: mode L
    return np.asarray(counts, dtype=np.int64)


def _peak(hist: np.ndarray) -> float:
    """The ink's contrast: the level that at least MIN_INK_PIXELS pixels reach (robust to hot pixels)."""
    at_or_above = np.cumsum(hist[::-1])[::-1]
    return float(np.flatnonzero(at_or_above >= min(MIN_INK_PIXELS, hist.sum()))[-1]) / 255


def _median_above(hist: np.ndarray, threshold: float) -> float:
    counts = hist.copy()
    counts[:int(threshold * 255) + 1] = 0
    if counts.sum() == 0:
        return max(threshold, 1 / 255)
    return float(np.searchsorted(np.cumsum(counts), counts.sum() / 2)) / 255


def otsu(hist: np.ndarray) -> float:
    """Otsu's threshold over a 256-level histogram: the level that best splits it in two classes
    (maximal between-class variance); returned in [0, 1]."""
    levels = np.arange(len(hist), dtype=np.float64)
    weight = np.cumsum(hist).astype(np.float64)  # pixels at or below each level
    total = weight[-1]
    mass = np.cumsum(hist * levels)
    mean_below = mass / np.maximum(weight, 1)
    mean_above = (mass[-1] - mass) / np.maximum(total - weight, 1)
    between = weight * (total - weight) * (mean_below - mean_above) ** 2
    return float(np.argmax(between)) / 255


def drop_specks(mask: np.ndarray) -> np.ndarray:
    """Remove ink blobs (8-connected) far smaller than the largest one: dust, noise, JPEG dirt."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if len(rows) == 0:
        return mask
    box = np.s_[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]  # all the ink: label only there
    labels, n = ndi.label(mask[box], structure=np.ones((3, 3)))
    if n <= 1:
        return mask
    areas = np.bincount(labels.ravel())
    kept = areas >= SPECK * areas[1:].max()  # (n + 1,) per label; label 0 is the paper
    kept[0] = False
    out = np.zeros_like(mask)
    out[box] = kept[labels]
    return out


# --- rendering a digit's ink the way MNIST did ---


def render_digit(ink: InkMap) -> Preprocessed:
    """The ink of one digit → a centred 28×28 uint8 MNIST-style image."""
    if ink.blank or not ink.mask.any():
        return Preprocessed(image=np.zeros((SIDE, SIDE), np.uint8), blank=True, inverted=ink.inverted, thickened=False,
                            stroke=0.0, source=ink.source)
    work = work_mask(ink)
    stroke = stroke_width(work) / max(work.shape)
    thickened = stroke < THIN * MNIST_STROKE
    if thickened:
        work = thicken(work, (MNIST_STROKE - stroke) * max(work.shape) / 2)
    image = centre_by_mass(fit_box(crop(work)))
    return Preprocessed(image=image, blank=False, inverted=ink.inverted, thickened=thickened, stroke=float(stroke),
                        source=ink.source)


def crop(mask: np.ndarray) -> np.ndarray:
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def work_mask(ink: InkMap) -> np.ndarray:
    """The digit as a bilevel mask whose longer side is WORK pixels.

    Large digits are max-pooled first so a one-pixel pen line survives shrinking;
    small ones are interpolated before thresholding so their edges stay smooth."""
    rows, cols = np.flatnonzero(ink.mask.any(1)), np.flatnonzero(ink.mask.any(0))
    box = np.s_[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    values = np.where(ink.mask[box], ink.ink[box], np.minimum(ink.ink[box], ink.threshold))  # specks fall below
    pool = max(values.shape) // WORK
    if pool >= 2:
        values = _max_pool(values, pool)
    scale = WORK / max(values.shape)
    size = (max(1, round(values.shape[1] * scale)), max(1, round(values.shape[0] * scale)))
    resized = np.asarray(Image.fromarray(values).resize(size, Image.Resampling.BILINEAR))
    mask = resized > ink.threshold
    return crop(mask) if mask.any() else np.ones((1, 1), bool)


def _max_pool(values: np.ndarray, k: int) -> np.ndarray:
    h, w = values.shape
    padded = np.pad(values, ((0, -h % k), (0, -w % k)), constant_values=values.min())
    rows = reduce(np.maximum, [padded[i::k] for i in range(k)])  # k strided slices, element-wise: 20x
    return reduce(np.maximum, [rows[:, j::k] for j in range(k)])  # faster than a max over a short axis


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width in pixels: ink area ÷ half the boundary length (a stroke of length L
    and width w has area wL and about 2L boundary pixels). Never below 2 for this estimate."""
    inner = ndi.binary_erosion(mask, border_value=0)
    boundary = int(mask.sum() - inner.sum())
    return 2.0 * float(mask.sum()) / max(boundary, 1)


def thicken(mask: np.ndarray, radius: float) -> np.ndarray:
    """Widen every stroke by `radius` pixels on each side (a round pen), growing the canvas to fit."""
    pad = int(np.ceil(radius)) + 1
    padded = np.pad(mask, pad)
    grown = ndi.distance_transform_edt(~padded) <= radius
    return crop(grown)


def thicken_in_place(mask: np.ndarray, radius: float) -> np.ndarray:
    """Widen every stroke by `radius` pixels on each side, on a canvas of the same size."""
    return ndi.distance_transform_edt(~mask) <= radius


def fit_box(mask: np.ndarray) -> np.ndarray:
    """Shrink the mask with area averaging (MNIST's anti-aliasing) so its longer side is BOX."""
    h, w = mask.shape
    scale = BOX / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    img = Image.fromarray(mask.astype(np.float32))
    return np.clip(np.asarray(img.resize(size, Image.Resampling.BOX)), 0, 1)


def normalize_ink(ink: np.ndarray, level: float = 0.1) -> np.ndarray:
    """Grey ink (H, W) float in [0, 1], bright = ink → an MNIST-style 28×28 uint8: the ink's box fitted
    into BOX×BOX with area averaging (MNIST's anti-aliasing), centred by mass; no ink → zeros. The
    synthetic training pictures (synth.styles, synth.nondigits) are rendered with it."""
    mask = ink > level
    if not mask.any():
        return np.zeros((SIDE, SIDE), np.uint8)
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return centre_by_mass(fit_box(ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]))


def centre_by_mass(digit: np.ndarray) -> np.ndarray:
    """Place `digit` (h, w ≤ BOX, float 0..1) in SIDE×SIDE with its centre of mass at pixel (14, 14)."""
    h, w = digit.shape
    weights = digit.astype(np.float64)
    total = weights.sum()  # the centre of mass as scipy.ndimage computes it, without its overhead
    cy = float(weights.sum(1) @ np.arange(h)) / total if total else (h - 1) / 2
    cx = float(weights.sum(0) @ np.arange(w)) / total if total else (w - 1) / 2
    top = int(np.clip(round(SIDE / 2 - cy), 0, SIDE - h))
    left = int(np.clip(round(SIDE / 2 - cx), 0, SIDE - w))
    out = np.zeros((SIDE, SIDE), np.float32)
    out[top:top + h, left:left + w] = digit
    return (out * 255 + 0.5).astype(np.uint8)
