// Pillow's Image.resize for float pictures (mode "F"), as its Resample.c does it: two passes, rows
// first, each output pixel a double sum over the filter's support stored as float32. preprocess.js
// resizes with it so that its pixels are the server's, not merely close to them.

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
  let src = values, rows = h, first = 0;
  const vert = coefficients(h, outH, filter);
  if (outW !== w) {
    first = vert[0].xmin;
    const last = vert[outH - 1].xmin + vert[outH - 1].k.length;
    rows = last - first;
    const horiz = coefficients(w, outW, filter), tmp = new Float32Array(outW * rows);
    for (let y = 0; y < rows; y++) {
      for (let xx = 0; xx < outW; xx++) {
        const { xmin, k } = horiz[xx];
        let ss = 0;
        for (let x = 0; x < k.length; x++) ss += values[(y + first) * w + x + xmin] * k[x];
        tmp[y * outW + xx] = ss;
      }
    }
    src = tmp;
  }
  if (outH === h) return src;
  const out = new Float32Array(outW * outH);
  for (let yy = 0; yy < outH; yy++) {
    const { xmin, k } = vert[yy];
    for (let x = 0; x < outW; x++) {
      let ss = 0;
      for (let y = 0; y < k.length; y++) ss += src[(y + xmin - first) * outW + x] * k[y];
      out[yy * outW + x] = ss;
    }
  }
  return out;
}
