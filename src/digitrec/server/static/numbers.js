// A drawn number → its groups of ink, what the line reader reads, and each digit's 28×28 picture and box:
// pictures.segment.line, pictures.lines.reader_input and inference.numbers, step for step, for an opaque
// grey picture (the pad's). The models are run by the caller (device.js); no DOM here.
import { bounds, label8, squaredDistances } from "./masks.js";
import { MNIST_STROKE, THIN, centreByMass, fitBox, greyLevels, inkMap, pyRound, strokeWidth } from "./preprocess.js";
import { BILINEAR_FILTER, BOX_FILTER, resize, resize8 } from "./resample.js";

const f32 = Math.fround;
const LINE_READ = 96, FRAGMENT = 0.6;              // segment: the line is read 96 px tall
export const MAX_DIGITS = 20;
const READER_HEIGHT = 32, INK_HEIGHT = 28, SIDE_PAD = 4, STRIDE = 4, BLANK = 10;  // lines, networks

/** segment.line: the line's ink at 96 px tall, strokes as wide as MNIST's, its groups left to right. */
export function line(rgba, width, height) {
  let levels = greyLevels(rgba, width, height), w = width, h = height;
  const scale = Math.min(1, LINE_READ / height);
  if (scale < 1) {  // decode._shrink: Pillow's 8-bit box filter (a grey RGBA picture: each channel alike)
    const sw = Math.max(1, pyRound(width * scale)), sh = Math.max(1, pyRound(height * scale));
    levels = resize8(levels, w, h, sw, sh, BOX_FILTER);
    w = sw; h = sh;
  }
  const ink = inkMap(levels, w, h);
  const found = { w, h, scale: height / h, groups: [], blank: true };
  if (ink.blank) return found;
  const rows = bounds(ink.mask, w, h), lineHeight = rows.h;
  const mask = mnistStrokes(ink.mask, w, h, lineHeight);
  const clipped = ink.ink.map((v) => Math.min(1, Math.max(0, v)));
  return { ...found, ink: clipped, mask, groups: groups(mask, w, h, lineHeight), blank: false };
}

function mnistStrokes(mask, w, h, lineHeight) {  // segment.mnist_strokes, thicken_in_place
  const stroke = strokeWidth({ mask, w, h }) / lineHeight;
  if (stroke >= THIN * MNIST_STROKE) return mask;
  const radius = ((MNIST_STROKE - stroke) * lineHeight) / 2;
  return squaredDistances(mask, w, h).map((d) => (Math.sqrt(d) <= radius ? 1 : 0));
}

function groups(mask, w, h, lineHeight) {  // segment._groups, merge_fragments
  const { labels, areas } = label8(mask, w, h);
  const boxes = areas.map(() => ({ top: Infinity, bottom: -1, left: Infinity, right: -1 }));
  for (let i = 0; i < labels.length; i++) {
    if (!labels[i]) continue;
    const b = boxes[labels[i]], x = i % w, y = (i - x) / w;
    b.top = Math.min(b.top, y); b.bottom = Math.max(b.bottom, y + 1);
    b.left = Math.min(b.left, x); b.right = Math.max(b.right, x + 1);
  }
  const all = boxes.slice(1).map((b, i) => ({ ids: [i + 1], left: b.left, right: b.right, height: b.bottom - b.top }));
  let tall = all.filter((g) => g.height >= FRAGMENT * lineHeight);
  if (!tall.length) tall = all;
  for (const frag of all.filter((g) => !tall.includes(g))) {
    const overlap = tall.map((g) => Math.min(frag.right, g.right) - Math.max(frag.left, g.left));
    const best = overlap.indexOf(Math.max(...overlap));
    if (overlap[best] > 0 || -overlap[best] < lineHeight / 4) {
      const host = tall[best];
      tall[best] = { ids: host.ids.concat(frag.ids), left: Math.min(host.left, frag.left),
                     right: Math.max(host.right, frag.right), height: host.height };
    } else {
      tall.push(frag);
    }
  }
  const out = tall.map((g) => {
    const top = Math.min(...g.ids.map((id) => boxes[id].top)), bottom = Math.max(...g.ids.map((id) => boxes[id].bottom));
    const gw = g.right - g.left, own = new Uint8Array(gw * (bottom - top));
    for (let y = top; y < bottom; y++) {
      for (let x = g.left; x < g.right; x++) own[(y - top) * gw + x - g.left] = g.ids.includes(labels[y * w + x]) ? 1 : 0;
    }
    return { mask: own, top, bottom, left: g.left, right: g.right };
  });
  return out.sort((a, b) => (a.left + a.right) / 2 - (b.left + b.right) / 2);
}

function dilate(mask, w, h) {  // ndimage.binary_dilation: the 4 neighbours, nothing outside
  const out = new Uint8Array(mask.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      out[i] = mask[i] || (x > 0 && mask[i - 1]) || (x < w - 1 && mask[i + 1]) || (y > 0 && mask[i - w])
        || (y < h - 1 && mask[i + w]) ? 1 : 0;
    }
  }
  return out;
}

/** Line.reader_input + lines.reader_input: {data (32 × width float32), width, scale}. */
export function readerInput(ln) {
  const rows = bounds(ln.mask, ln.w, ln.h), top = rows.top, bottom = rows.top + rows.h;
  const keep = dilate(ln.mask, ln.w, ln.h), w = ln.w;
  let ink = new Float32Array((bottom - top) * w);
  for (let y = top; y < bottom; y++) for (let x = 0; x < w; x++) ink[(y - top) * w + x] = keep[y * w + x] ? ln.ink[y * w + x] : 0;
  let h = bottom - top, first = -1, last = -1;
  for (let y = 0; y < h; y++) {
    let m = 0;
    for (let x = 0; x < w; x++) m = Math.max(m, ink[y * w + x]);
    if (m > f32(0.05)) { if (first < 0) first = y; last = y; }
  }
  if (first >= 0) { ink = ink.slice(first * w, (last + 1) * w); h = last - first + 1; }
  const width = Math.max(1, pyRound((w * INK_HEIGHT) / h));
  const small = resize(ink, w, h, width, INK_HEIGHT, BILINEAR_FILTER);
  let total = width + 2 * SIDE_PAD;
  total += (4 - (total % 4)) % 4;
  const data = new Float32Array(READER_HEIGHT * total), offset = (READER_HEIGHT - INK_HEIGHT) >> 1;
  for (let y = 0; y < INK_HEIGHT; y++) {
    for (let x = 0; x < width; x++) data[(offset + y) * total + SIDE_PAD + x] = Math.min(1, Math.max(0, small[y * width + x]));
  }
  return { data, width: total, scale: INK_HEIGHT / (bottom - top) };
}

/** numbers.emissions: greedy CTC over the reader's (frames × 11) probabilities → [{probs, column}]. */
export function emissions(frames, count, scale) {
  const at = (f) => frames.subarray(f * (BLANK + 1), (f + 1) * (BLANK + 1));
  const out = [];
  let last = BLANK;
  for (let f = 0; f < count; f++) {
    const p = at(f);
    let c = 0;
    for (let k = 1; k <= BLANK; k++) if (p[k] > p[c]) c = k;
    if (c !== BLANK && c !== last) out.push([c, f]);
    else if (c !== BLANK && p[c] > at(out.at(-1)[1])[c]) out[out.length - 1] = [c, f];
    last = c;
  }
  return out.map(([, f]) => ({ probs: at(f), column: ((f + 0.5) * STRIDE - SIDE_PAD) / scale }));
}

/** numbers.parts: each group whole, or split between the places the line reader read several digits. */
export function parts(ln, read) {
  const distance = (g, column) => Math.max(g.left - column, column - g.right, 0);
  const owner = read.map((e) => {
    let best = 0;
    ln.groups.forEach((g, i) => { if (distance(g, e.column) < distance(ln.groups[best], e.column)) best = i; });
    return best;
  });
  const out = [];
  ln.groups.forEach((group, g) => {
    const mine = read.filter((e, i) => owner[i] === g);
    if (mine.length <= 1) { out.push({ group, left: group.left, right: group.right, emission: null }); return; }
    const cuts = [group.left, ...mine.slice(1).map((b, i) => pyRound((mine[i].column + b.column) / 2)), group.right];
    mine.forEach((e, i) => out.push({ group, left: cuts[i], right: cuts[i + 1], emission: e }));
  });
  return out;
}

function columns(group, left, right) {  // Line.digit/box: [left, right) of the line, Python's `left or …`
  return [Math.max(group.left, left || group.left), Math.min(group.right, right || group.right)];
}

/** Line.digit: a part's ink as one MNIST-style 28×28 digit. */
export function digitOf(ln, part) {
  const { group } = part, [a, b] = columns(group, part.left, part.right), gw = group.right - group.left;
  const w = b - a, h = group.bottom - group.top, own = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) own[y * w + x] = group.mask[y * gw + a - group.left + x];
  const keep = dilate(own, w, h), grey = new Float32Array(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) grey[y * w + x] = keep[y * w + x] ? ln.ink[(group.top + y) * ln.w + a + x] : 0;
  const box = bounds(grey.map((v) => (v > f32(0.1) ? 1 : 0)), w, h);
  if (!box) return new Uint8Array(28 * 28);
  const cut = new Float32Array(box.w * box.h);
  for (let y = 0; y < box.h; y++) cut.set(grey.subarray((box.top + y) * w + box.left, (box.top + y) * w + box.left + box.w), y * box.w);
  return centreByMass(fitBox(cut, box.w, box.h));
}

/** Line.box: a part's ink box in the picture's pixels. */
export function boxOf(ln, part) {
  const { group } = part, [a, b] = columns(group, part.left, part.right), gw = group.right - group.left;
  const w = Math.max(0, b - a), h = group.bottom - group.top, own = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) own[y * w + x] = group.mask[y * gw + a - group.left + x];
  const box = bounds(own, w, h) || { top: 0, left: 0, h, w: Math.max(1, b - a) };
  const s = ln.scale;
  return { x: Math.trunc((a + box.left) * s), y: Math.trunc((group.top + box.top) * s),
           width: Math.ceil(box.w * s), height: Math.ceil(box.h * s) };
}

/** numbers.digit_probabilities: the line reader's ten digit probabilities (blank left out). */
export function shareProbabilities(emission) {
  const digits = emission.probs.slice(0, BLANK);
  const sum = Math.max(digits.reduce((x, y) => x + y, 0), 1e-9);
  return Float32Array.from(digits, (v) => v / sum);
}
