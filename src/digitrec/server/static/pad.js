// A drawing pad: strokes drawn with any pointer, undo, clear, and the picture that is read (the same
// pixels whether the page reads them itself or sends them to the server as a PNG).

export const BRUSH = 0.075;       // stroke width ÷ the pad's height: MNIST-like strokes for digits as tall as the pad
export const UPLOAD_HEIGHT = 140; // pixels of the picture read: a digit is read at 80 px (preprocess WORK), a number
                                  // at 96 px tall; 280 would only make the page's own reading 4x the work
export const DEBOUNCE_MS = 120;   // wait this long after the last pointer move before asking
const INK = "#111";
const PAPER = "#fff";

export class Pad {
  constructor(canvas, hint, undoButton, clearButton, aspect, onChange) {
    Object.assign(this, { canvas, hint, undoButton, clearButton, aspect, onChange });
    this.strokes = [];      // each stroke: [{x, y}], x in 0..aspect, y in 0..1 of the pad's height
    this.active = null;     // {id: pointerId, points} while a pointer is down
    this.frame = 0;
    canvas.addEventListener("pointerdown", (e) => this.down(e));
    canvas.addEventListener("pointermove", (e) => this.move(e));
    canvas.addEventListener("pointerup", (e) => this.up(e));
    canvas.addEventListener("pointercancel", (e) => this.up(e));
    undoButton.addEventListener("click", () => this.undo());
    clearButton.addEventListener("click", () => this.clear());
    new ResizeObserver(() => this.fit()).observe(canvas);
    this.fit();
  }

  // The canvas's pixels follow its CSS size × devicePixelRatio, so lines stay sharp on any screen.
  fit() {
    const box = this.canvas.getBoundingClientRect();
    const height = Math.round(box.height * (window.devicePixelRatio || 1));
    if (height > 0 && this.canvas.height !== height) {
      this.canvas.height = height;
      this.canvas.width = Math.round(height * this.aspect);
      this.render();
    }
  }

  point(event) {
    const box = this.canvas.getBoundingClientRect();
    const clamp = (v, top) => Math.min(top, Math.max(0, v));
    return { x: clamp(((event.clientX - box.left) / box.width) * this.aspect, this.aspect),
             y: clamp((event.clientY - box.top) / box.height, 1) };
  }

  down(event) {
    if (this.active || (event.pointerType === "mouse" && event.button !== 0)) return;
    event.preventDefault();
    this.canvas.setPointerCapture(event.pointerId);
    this.active = { id: event.pointerId, points: [this.point(event)] };
    this.strokes.push(this.active.points);
    this.changed(DEBOUNCE_MS);
  }

  move(event) {
    if (!this.active || event.pointerId !== this.active.id) return;
    // Coalesced events: every sample the device made since the last frame, for smooth fast strokes.
    const samples = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
    for (const e of samples.length ? samples : [event]) this.active.points.push(this.point(e));
    this.changed(DEBOUNCE_MS);
  }

  up(event) {
    if (!this.active || event.pointerId !== this.active.id) return;
    this.active = null;
    this.changed(0);
  }

  undo() {
    if (this.active || !this.strokes.length) return;
    this.strokes.pop();
    this.changed(0);
  }

  clear() {
    if (this.active) return;
    this.strokes.length = 0;
    this.changed(0);
  }

  changed(delay) {
    if (!this.frame) this.frame = requestAnimationFrame(() => this.render());
    this.onChange(delay);
  }

  render() {
    this.frame = 0;
    draw(this.canvas.getContext("2d"), this.strokes, this.canvas.height, this.aspect);
    const empty = this.strokes.length === 0;
    this.hint.hidden = !empty;
    this.undoButton.disabled = this.clearButton.disabled = empty;
  }

  // The strokes drawn UPLOAD_HEIGHT pixels tall, on a canvas of their own.
  picture() {
    const canvas = document.createElement("canvas");
    canvas.height = UPLOAD_HEIGHT;
    canvas.width = Math.round(UPLOAD_HEIGHT * this.aspect);
    draw(canvas.getContext("2d", { willReadFrequently: true }), this.strokes, UPLOAD_HEIGHT, this.aspect);
    return canvas;
  }

  upload() {
    return this.picture().toDataURL("image/png");
  }

  pixels() {
    const canvas = this.picture();
    return canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
  }
}

function draw(ctx, strokes, height, aspect) {
  ctx.fillStyle = PAPER;
  ctx.fillRect(0, 0, height * aspect, height);
  ctx.strokeStyle = ctx.fillStyle = INK;
  ctx.lineWidth = BRUSH * height;
  ctx.lineCap = ctx.lineJoin = "round";
  for (const points of strokes) drawStroke(ctx, points, height);
}

// A smooth line through the points: quadratic curves from midpoint to midpoint, each point a control.
function drawStroke(ctx, points, scale) {
  const p = points.map((q) => ({ x: q.x * scale, y: q.y * scale }));
  ctx.beginPath();
  if (p.length === 1) {
    ctx.arc(p[0].x, p[0].y, (BRUSH * scale) / 2, 0, 2 * Math.PI);
    ctx.fill();
    return;
  }
  ctx.moveTo(p[0].x, p[0].y);
  for (let i = 1; i < p.length - 1; i++) {
    ctx.quadraticCurveTo(p[i].x, p[i].y, (p[i].x + p[i + 1].x) / 2, (p[i].y + p[i + 1].y) / 2);
  }
  ctx.lineTo(p[p.length - 1].x, p[p.length - 1].y);
  ctx.stroke();
}
