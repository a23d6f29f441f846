// A drawing's pixels → the 28×28 MNIST-style digit the model reads: digitrec's pictures.preprocess,
// step for step, for opaque pictures (a canvas). No DOM, no network: the page, the parity tests and
// bench/web.py import it as it is.
//
// The page must give the server's answer on the same picture, so this repeats the Python code's
// arithmetic, not just its idea: float32 values are rounded to float32 after every operation
// (Math.fround), as NumPy does; Pillow's resampling is its own two-pass convolution; Python's round()
// rounds halves to even. Each function names the Python function it repeats.

import { bounds, label8, squaredDistances } from "./masks.js";
import { BILINEAR_FILTER, BOX_FILTER, resize } from "./resample.js";

const f32 = Math.fround;
const SIDE = 28, BOX = 20, WORK = 80;
export const MNIST_STROKE = 0.136, THIN = 0.75;
const MIN_CONTRAST = 0.15, MIN_INK_PIXELS = 12, SPECK = 0.05;
const WORK_SIDE = 640;

/** RGBA bytes (a canvas's getImageData) → {image: Uint8Array(784), blank, thickened}. */
export function preprocess(rgba, width, height) {
  if (Math.max(width, height) > WORK_SIDE) throw new Error(`picture over ${WORK_SIDE} pixels: shrink it first`);
  return renderDigit(inkMap(greyLevels(rgba, width, height), width, height));
}

/** Pillow's RGB → L, integer, of an opaque picture (decode.gray_levels). */
export function greyLevels(rgba, width, height) {
  const levels = new Uint8Array(width * height);
  for (let i = 0; i < levels.length; i++) {
    const j = 4 * i;
    levels[i] = (rgba[j] * 19595 + rgba[j + 1] * 38470 + rgba[j + 2] * 7471 + 0x8000) >> 16;
  }
  return levels;
}

// --- preprocess.ink_map: where the ink is ---

export function inkMap(levels, w, h) {
  const n = levels.length, grayHist = histogram(levels);
  const grayOf = new Float32Array(256), brightOf = new Float32Array(256);  // each grey level's value
  for (let v = 0; v < 256; v++) grayOf[v] = f32(v / 255);
  const inverted = inkIsDark(levels, grayOf, w, h, grayHist);
  for (let v = 0; v < 256; v++) brightOf[v] = inverted ? f32(1 - grayOf[v]) : grayOf[v];
  const bright = new Float32Array(n);
  for (let i = 0; i < n; i++) bright[i] = brightOf[levels[i]];
  const paper = background(bright, w, h);  // a number when evenly lit, else (h, w)
  const flat = new Float32Array(n);
  if (typeof paper === "number") {  // evenly lit: a function of the grey level, computed once per level
    const flatOf = new Float32Array(256);
    for (let v = 0; v < 256; v++) flatOf[v] = flatten(brightOf[v], paper, inverted);
    for (let i = 0; i < n; i++) flat[i] = flatOf[levels[i]];
  } else {
    for (let i = 0; i < n; i++) flat[i] = flatten(bright[i], paper[i], inverted);
  }
  const hist = histogram(toLevels(flat));
  const peak = peakLevel(hist);
  if (peak < MIN_CONTRAST) return { blank: true };
  const threshold = Math.min(0.6 * peak, Math.max(0.25 * peak, otsu(hist)));
  const level = medianAbove(hist, threshold), down = f32(level);
  const cut = f32(threshold / level);
  const ink = new Float32Array(n), mask = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    ink[i] = flat[i] / down;  // float32 ÷ float32, rounded to float32 by the store
    mask[i] = ink[i] > cut ? 1 : 0;
  }
  const kept = dropSpecks(mask, w, h);
  let count = 0;
  for (let i = 0; i < n; i++) count += kept[i];
  return { ink, mask: kept, w, h, threshold: threshold / level, blank: count < MIN_INK_PIXELS };
}

function flatten(bright, paper, inverted) {  // preprocess.flatten, then clipped to 0..1
  let v = f32(bright - paper);
  if (inverted) v = f32(v / Math.max(f32(1 - paper), f32(0.05)));
  return Math.min(1, Math.max(0, v));
}

function histogram(levels) {
  const hist = new Float64Array(256);
  for (const v of levels) hist[v]++;
  return hist;
}

function toLevels(values) {  // preprocess._levels
  const out = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = Math.trunc(f32(f32(values[i] * 255) + 0.5));
  return out;
}

function peakLevel(hist) {  // preprocess._peak
  let total = 0;
  for (const n of hist) total += n;
  const need = Math.min(MIN_INK_PIXELS, total);
  let above = 0;
  for (let v = 255; v >= 0; v--) {
    above += hist[v];
    if (above >= need) return v / 255;
  }
  return 0;
}

function medianOf(values) {  // np.median of float32 values
  const sorted = Float32Array.from(values).sort();
  const n = sorted.length, mid = n >> 1;
  return n % 2 ? sorted[mid] : f32(f32(sorted[mid - 1] + sorted[mid]) / 2);
}

function inkIsDark(levels, grayOf, w, h, hist) {  // preprocess.ink_bright
  const edge = Math.max(1, Math.floor(Math.min(h, w) / 50));
  const border = new Float64Array(256);  // the border's grey levels (corners twice, as in Python)
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const times = (y < edge || y >= h - edge ? 1 : 0) + (x < edge || x >= w - edge ? 1 : 0);
      border[levels[y * w + x]] += times;
    }
  }
  const darkest = 1 - peakLevel(Float64Array.from(hist).reverse());
  const paper = medianLevel(border, grayOf);
  return paper - darkest > peakLevel(hist) - paper;
}

function medianLevel(counts, valueOf) {  // np.median of float32 values given as counts per level
  let total = 0;
  for (const c of counts) total += c;
  const at = (k) => {  // the k-th smallest value (0-based)
    let seen = 0;
    for (let v = 0; v < 256; v++) { seen += counts[v]; if (seen > k) return valueOf[v]; }
    return valueOf[255];
  };
  const mid = Math.floor(total / 2);
  return total % 2 ? at(mid) : f32(f32(at(mid - 1) + at(mid)) / 2);
}

function otsu(hist) {  // preprocess.otsu
  let weight = 0, mass = 0, total = 0, all = 0, best = -Infinity, at = 0;
  for (let v = 0; v < 256; v++) { total += hist[v]; all += hist[v] * v; }
  for (let v = 0; v < 256; v++) {
    weight += hist[v];
    mass += hist[v] * v;
    const below = mass / Math.max(weight, 1), above = (all - mass) / Math.max(total - weight, 1);
    const between = weight * (total - weight) * (below - above) ** 2;
    if (between > best) { best = between; at = v; }
  }
  return at / 255;
}

function medianAbove(hist, threshold) {  // preprocess._median_above
  const counts = Float64Array.from(hist);
  counts.fill(0, 0, Math.floor(threshold * 255) + 1);
  let total = 0;
  for (const n of counts) total += n;
  if (total === 0) return Math.max(threshold, 1 / 255);
  let sum = 0;
  for (let v = 0; v < 256; v++) {
    sum += counts[v];
    if (sum >= total / 2) return v / 255;
  }
  return 1;
}

// preprocess.background: the paper's level, from a grey opening of a ≤64-pixel copy. A drawing's paper
// is even, so this is one number; an uneven one is smoothed and scaled back up as in Python.
function background(bright, w, h) {
  const scale = Math.min(1, 64 / Math.max(h, w));
  const sw = Math.max(1, pyRound(w * scale)), sh = Math.max(1, pyRound(h * scale));
  const small = resize(bright, w, h, sw, sh, BOX_FILTER);
  const size = Math.max(3, Math.trunc(Math.max(sw, sh) * 0.3) | 1);
  const open = rank(rank(small, sw, sh, size, true), sw, sh, size, false);
  // a constant opening (any drawing on clean paper) stays that constant through the blur, to float32
  if (open.every((v) => v === open[0])) return open[0];
  const opened = gaussian(open, sw, sh, size / 4);
  let lo = Infinity, hi = -Infinity;
  for (const v of opened) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  if (f32(hi - lo) < 0.02) return medianOf(opened);
  return resize(opened, sw, sh, w, h, BILINEAR_FILTER);
}

// ndimage.minimum_filter / maximum_filter with a size×size square, mode "nearest" (separable: rows, then
// columns); `lowest` picks the minimum
function rank(values, w, h, size, lowest) {
  const half = size >> 1, tmp = new Float32Array(values.length), out = new Float32Array(values.length);
  const pass = (src, dst, n, count, step, stride) => {
    for (let line = 0; line < count; line++) {
      const base = line * stride;
      for (let a = 0; a < n; a++) {
        let m = src[base + a * step];
        for (let d = -half; d <= size - half - 1; d++) {
          const v = src[base + Math.min(n - 1, Math.max(0, a + d)) * step];
          if (lowest ? v < m : v > m) m = v;
        }
        dst[base + a * step] = m;
      }
    }
  };
  pass(values, tmp, w, h, 1, w);
  pass(tmp, out, h, w, w, 1);
  return out;
}

// ndimage.gaussian_filter(sigma, mode "nearest", truncate 4): rows, then columns, each rounded to float32
function gaussian(values, w, h, sigma) {
  const radius = Math.trunc(4 * sigma + 0.5);
  const kernel = [];
  let sum = 0;
  for (let x = -radius; x <= radius; x++) { kernel.push(Math.exp((-0.5 / (sigma * sigma)) * x * x)); sum += kernel.at(-1); }
  const k = kernel.map((v) => v / sum);
  const pass = (src, along) => {
    const out = new Float32Array(src.length);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        let acc = 0;
        for (let d = -radius; d <= radius; d++) {
          const xx = along ? Math.min(w - 1, Math.max(0, x + d)) : x;
          const yy = along ? y : Math.min(h - 1, Math.max(0, y + d));
          acc += src[yy * w + xx] * k[d + radius];
        }
        out[y * w + x] = acc;
      }
    }
    return out;
  };
  return pass(pass(values, false), true);
}

// preprocess.drop_specks: 8-connected blobs far smaller than the largest are dust
function dropSpecks(mask, w, h) {
  const { labels, areas } = label8(mask, w, h);
  if (areas.length <= 2) return mask;
  const largest = Math.max(...areas.slice(1));
  const out = new Uint8Array(mask.length);
  for (let i = 0; i < mask.length; i++) out[i] = labels[i] && areas[labels[i]] >= SPECK * largest ? 1 : 0;
  return out;
}

// --- preprocess.render_digit: the ink of one digit, drawn the way MNIST did ---

function renderDigit(ink) {
  if (ink.blank) return { image: new Uint8Array(SIDE * SIDE), blank: true, thickened: false };
  let work = workMask(ink);
  const stroke = strokeWidth(work) / Math.max(work.w, work.h);
  const thickened = stroke < THIN * MNIST_STROKE;
  if (thickened) work = thicken(work, ((MNIST_STROKE - stroke) * Math.max(work.w, work.h)) / 2);
  const box = crop(work);
  return { image: centreByMass(fitBox(Float32Array.from(box.mask), box.w, box.h)), blank: false, thickened };
}

function cut(values, w, box, Kind) {
  const out = new Kind(box.w * box.h);
  for (let y = 0; y < box.h; y++) out.set(values.subarray((box.top + y) * w + box.left, (box.top + y) * w + box.left + box.w), y * box.w);
  return out;
}

function crop(m) {  // {mask, w, h} → the same, cut to its ink
  const box = bounds(m.mask, m.w, m.h);
  return { mask: cut(m.mask, m.w, box, Uint8Array), w: box.w, h: box.h };
}

function workMask(ink) {  // preprocess.work_mask: a bilevel mask WORK pixels on its longer side
  const box = bounds(ink.mask, ink.w, ink.h);
  const floor = f32(ink.threshold);
  const mask = cut(ink.mask, ink.w, box, Uint8Array);
  let values = cut(ink.ink, ink.w, box, Float32Array).map((v, i) => (mask[i] ? v : Math.min(v, floor)));
  let w = box.w, h = box.h;
  const pool = Math.floor(Math.max(w, h) / WORK);
  if (pool >= 2) ({ values, w, h } = maxPool(values, w, h, pool));
  const scale = WORK / Math.max(w, h);
  const sw = Math.max(1, pyRound(w * scale)), sh = Math.max(1, pyRound(h * scale));
  const resized = resize(values, w, h, sw, sh, BILINEAR_FILTER);
  const out = { mask: Uint8Array.from(resized, (v) => (v > floor ? 1 : 0)), w: sw, h: sh };
  return out.mask.includes(1) ? crop(out) : { mask: Uint8Array.of(1), w: 1, h: 1 };
}

function maxPool(values, w, h, k) {
  let lowest = Infinity;
  for (const v of values) lowest = Math.min(lowest, v);
  const pw = Math.ceil(w / k), ph = Math.ceil(h / k), out = new Float32Array(pw * ph).fill(lowest);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const j = Math.floor(y / k) * pw + Math.floor(x / k);
      out[j] = Math.max(out[j], values[y * w + x]);
    }
  }
  return { values: out, w: pw, h: ph };
}

export function strokeWidth(m) {  // preprocess.stroke_width: ink area ÷ half its boundary (4-connected erosion)
  let area = 0, inner = 0;
  const at = (x, y) => (x >= 0 && y >= 0 && x < m.w && y < m.h ? m.mask[y * m.w + x] : 0);
  for (let y = 0; y < m.h; y++) {
    for (let x = 0; x < m.w; x++) {
      if (!at(x, y)) continue;
      area++;
      if (at(x - 1, y) && at(x + 1, y) && at(x, y - 1) && at(x, y + 1)) inner++;
    }
  }
  return (2 * area) / Math.max(area - inner, 1);
}

function thicken(m, radius) {  // preprocess.thicken: a round pen `radius` wider, on a grown canvas
  const pad = Math.ceil(radius) + 1, w = m.w + 2 * pad, h = m.h + 2 * pad;
  const mask = new Uint8Array(w * h);
  for (let y = 0; y < m.h; y++) mask.set(m.mask.subarray(y * m.w, (y + 1) * m.w), (y + pad) * w + pad);
  const d2 = squaredDistances(mask, w, h);
  return crop({ mask: d2.map((d) => (Math.sqrt(d) <= radius ? 1 : 0)), w, h });
}

/** preprocess.fit_box: float32 values (h, w) area-averaged down to BOX on the longer side, clipped to 0..1. */
export function fitBox(values, width, height) {
  const scale = BOX / Math.max(width, height);
  const w = Math.max(1, pyRound(width * scale)), h = Math.max(1, pyRound(height * scale));
  const out = resize(values, width, height, w, h, BOX_FILTER);
  return { values: out.map((v) => Math.min(1, Math.max(0, v))), w, h };
}

export function centreByMass(d) {  // preprocess.centre_by_mass: centre of mass at pixel (14, 14)
  let total = 0, my = 0, mx = 0;
  for (let y = 0; y < d.h; y++) {
    for (let x = 0; x < d.w; x++) { const v = d.values[y * d.w + x]; total += v; my += v * y; mx += v * x; }
  }
  const cy = total ? my / total : (d.h - 1) / 2, cx = total ? mx / total : (d.w - 1) / 2;
  const top = Math.min(SIDE - d.h, Math.max(0, pyRound(SIDE / 2 - cy)));
  const left = Math.min(SIDE - d.w, Math.max(0, pyRound(SIDE / 2 - cx)));
  const image = new Uint8Array(SIDE * SIDE);
  for (let y = 0; y < d.h; y++) {
    for (let x = 0; x < d.w; x++) {
      image[(top + y) * SIDE + left + x] = Math.trunc(f32(f32(d.values[y * d.w + x] * 255) + 0.5));
    }
  }
  return image;
}

export function pyRound(x) {  // Python's round(): halves to even
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
