// Pillow's Image.resize as its Resample.c does it: two passes, rows first. For float pictures (mode "F",
// `resize`) each output pixel is a double sum over the filter's support stored as float32; for 8-bit
// ones (`resize8`) a fixed-point sum with 22-bit weights, rounded and clipped. preprocess.js and
// numbers.js resize with them so that their pixels are the server's, not merely close to them.

export const BOX_FILTER = { support: 0.5, weight: (x) => (x > -0.5 && x <= 0.5 ? 1 : 0) };
export const BILINEAR_FILTER = { support: 1, weight: (x) => (Math.abs(x) < 1 ? 1 - Math.abs(x) : 0) };

function coefficients(inSize, outSize, filter) {  // Resample.c precompute_coeffs
  const scale = inSize / outSize, filterscale = Math.max(scale, 1), support = filter.support * filterscale;
  const ss = 1 / filterscale;
  const out = [];
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    const k = [];
    let ww = 0;
    for (let x = 0; x < xmax; x++) { k.push(filter.weight((x + xmin - center + 0.5) * ss)); ww += k[x]; }
    out.push({ xmin, k: ww !== 0 ? k.map((v) => v / ww) : k });
  }
  return out;
}

export function resize(values, w, h, outW, outH, filter) {
  return twoPasses(values, w, h, outW, outH, filter, Float32Array, (k) => k, () => 0, (ss) => ss);
}

const PRECISION_BITS = 22, HALF = 1 << (PRECISION_BITS - 1), TOP = 256 * (1 << PRECISION_BITS);

export function resize8(values, w, h, outW, outH, filter) {  // mode "L": weights in fixed point
  const fixed = (k) => k.map((v) => Math.trunc(v < 0 ? v * (1 << PRECISION_BITS) - 0.5 : v * (1 << PRECISION_BITS) + 0.5));
  const clip8 = (ss) => (ss >= TOP ? 255 : ss <= 0 ? 0 : Math.floor(ss / (1 << PRECISION_BITS)));
  return twoPasses(values, w, h, outW, outH, filter, Uint8Array, fixed, () => HALF, clip8);
}

function twoPasses(values, w, h, outW, outH, filter, Kind, weights, start, store) {
  let src = values, first = 0;
  const vert = coefficients(h, outH, filter).map((c) => ({ xmin: c.xmin, k: weights(c.k) }));
  if (outW !== w) {
    first = vert[0].xmin;
    const rows = vert[outH - 1].xmin + vert[outH - 1].k.length - first;
    const horiz = coefficients(w, outW, filter).map((c) => ({ xmin: c.xmin, k: weights(c.k) }));
    const tmp = new Kind(outW * rows);
    for (let y = 0; y < rows; y++) {
      for (let xx = 0; xx < outW; xx++) {
        const { xmin, k } = horiz[xx];
        let ss = start();
        for (let x = 0; x < k.length; x++) ss += values[(y + first) * w + x + xmin] * k[x];
        tmp[y * outW + xx] = store(ss);
      }
    }
    src = tmp;
  }
  if (outH === h) return src;
  const out = new Kind(outW * outH);
  for (let yy = 0; yy < outH; yy++) {
    const { xmin, k } = vert[yy];
    for (let x = 0; x < outW; x++) {
      let ss = start();
      for (let y = 0; y < k.length; y++) ss += src[(y + xmin - first) * outW + x] * k[y];
      out[yy * outW + x] = store(ss);
    }
  }
  return out;
}
