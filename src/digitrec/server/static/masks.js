// Bilevel masks (Uint8Array, row by row): the scipy.ndimage operations preprocess.js and numbers.js need,
// with the same results (labels in scan order, exact Euclidean distances).

/** The box {top, left, h, w} of a mask's ink, or null when it has none. */
export function bounds(mask, w, h) {
  let top = h, bottom = -1, left = w, right = -1;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (!mask[y * w + x]) continue;
      top = Math.min(top, y); bottom = Math.max(bottom, y);
      left = Math.min(left, x); right = Math.max(right, x);
    }
  }
  return bottom < 0 ? null : { top, left, h: bottom - top + 1, w: right - left + 1 };
}

/** ndimage.label with 8-connectivity: labels 1, 2, … in the order a raster scan meets the blobs; areas[label]. */
export function label8(mask, w, h) {
  const labels = new Int32Array(mask.length), areas = [0], stack = [];
  for (let start = 0; start < mask.length; start++) {
    if (!mask[start] || labels[start]) continue;
    const label = areas.length;
    let area = 0;
    labels[start] = label;
    stack.push(start);
    while (stack.length) {
      const i = stack.pop(), x = i % w, y = (i - x) / w;
      area++;
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          const xx = x + dx, yy = y + dy, j = yy * w + xx;
          if (xx < 0 || yy < 0 || xx >= w || yy >= h || !mask[j] || labels[j]) continue;
          labels[j] = label;
          stack.push(j);
        }
      }
    }
    areas.push(area);
  }
  return { labels, areas };
}

// Exact squared Euclidean distance of every pixel to the nearest ink pixel (Felzenszwalb–Huttenlocher),
// the integers ndimage.distance_transform_edt takes the square root of.
export function squaredDistances(mask, w, h) {
  const INF = 1e20, grid = new Float64Array(w * h);
  for (let i = 0; i < grid.length; i++) grid[i] = mask[i] ? 0 : INF;
  const line = (get, set, n) => {
    const f = new Float64Array(n), v = new Int32Array(n), z = new Float64Array(n + 1);
    for (let q = 0; q < n; q++) f[q] = get(q);
    let k = 0;
    v[0] = 0; z[0] = -INF; z[1] = INF;
    for (let q = 1; q < n; q++) {
      let s = ((f[q] + q * q) - (f[v[k]] + v[k] * v[k])) / (2 * q - 2 * v[k]);
      while (s <= z[k]) { k--; s = ((f[q] + q * q) - (f[v[k]] + v[k] * v[k])) / (2 * q - 2 * v[k]); }
      k++; v[k] = q; z[k] = s; z[k + 1] = INF;
    }
    k = 0;
    for (let q = 0; q < n; q++) {
      while (z[k + 1] < q) k++;
      set(q, (q - v[k]) * (q - v[k]) + f[v[k]]);
    }
  };
  for (let x = 0; x < w; x++) line((q) => grid[q * w + x], (q, d) => { grid[q * w + x] = d; }, h);
  for (let y = 0; y < h; y++) line((q) => grid[y * w + q], (q, d) => { grid[y * w + q] = d; }, w);
  return grid;
}
