// The drawing page: strokes on a canvas → PNG → POST v1/predict → the answer, ten bars, the 28×28 input.
// Plain JS, no build step, no network beyond this server. URLs are relative, so the page also
// works behind a path prefix.
"use strict";

const BRUSH = 0.075;       // stroke width ÷ canvas side: MNIST-like strokes for a digit filling the pad
const UPLOAD_SIDE = 280;   // pixels of the picture sent to the server (it works at ≤ 640 anyway)
const DEBOUNCE_MS = 120;   // wait this long after the last pointer move before asking
const INK = "#111";
const PAPER = "#fff";

const pad = document.getElementById("pad");
const result = document.getElementById("result");
const ui = {
  digit: document.getElementById("digit"), verdict: document.getElementById("verdict"),
  detail: document.getElementById("detail"), seen: document.getElementById("seen"),
  bars: document.getElementById("bars"), hint: document.getElementById("hint"),
  undo: document.getElementById("undo"), clear: document.getElementById("clear"),
  model: document.getElementById("model"),
};

const strokes = [];        // each stroke: [{x, y}] in 0..1 of the pad's side
let active = null;         // {id: pointerId, points} while a pointer is down
let timer = 0, asked = 0, inFlight = null, frame = 0;

// --- drawing ---

function drawStrokes(ctx, side) {
  ctx.fillStyle = PAPER;
  ctx.fillRect(0, 0, side, side);
  ctx.strokeStyle = ctx.fillStyle = INK;
  ctx.lineWidth = BRUSH * side;
  ctx.lineCap = ctx.lineJoin = "round";
  for (const points of strokes) drawStroke(ctx, points, side);
}

// A smooth line through the points: quadratic curves from midpoint to midpoint, each point a control.
function drawStroke(ctx, points, side) {
  const p = points.map((q) => ({ x: q.x * side, y: q.y * side }));
  ctx.beginPath();
  if (p.length === 1) {
    ctx.arc(p[0].x, p[0].y, (BRUSH * side) / 2, 0, 2 * Math.PI);
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

function render() {
  frame = 0;
  drawStrokes(pad.getContext("2d"), pad.width);
  const empty = strokes.length === 0;
  ui.hint.hidden = !empty;
  ui.undo.disabled = ui.clear.disabled = empty;
}

function scheduleRender() {
  if (!frame) frame = requestAnimationFrame(render);
}

// The canvas's pixels follow its CSS size × devicePixelRatio, so lines stay sharp on any screen.
function fitCanvas() {
  const side = Math.round(pad.getBoundingClientRect().width * (window.devicePixelRatio || 1));
  if (side > 0 && pad.width !== side) {
    pad.width = pad.height = side;
    render();
  }
}

function point(event) {
  const box = pad.getBoundingClientRect();
  const clamp = (v) => Math.min(1, Math.max(0, v));
  return { x: clamp((event.clientX - box.left) / box.width), y: clamp((event.clientY - box.top) / box.height) };
}

pad.addEventListener("pointerdown", (event) => {
  if (active || (event.pointerType === "mouse" && event.button !== 0)) return;
  event.preventDefault();
  pad.setPointerCapture(event.pointerId);
  active = { id: event.pointerId, points: [point(event)] };
  strokes.push(active.points);
  scheduleRender();
  ask(DEBOUNCE_MS);
});

pad.addEventListener("pointermove", (event) => {
  if (!active || event.pointerId !== active.id) return;
  // Coalesced events: every sample the device made since the last frame, for smooth fast strokes.
  const samples = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
  for (const e of samples.length ? samples : [event]) active.points.push(point(e));
  scheduleRender();
  ask(DEBOUNCE_MS);
});

function endStroke(event) {
  if (!active || event.pointerId !== active.id) return;
  active = null;
  ask(0);
}
pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);

function undo() {
  if (active || !strokes.length) return;
  strokes.pop();
  scheduleRender();
  ask(0);
}

function clearAll() {
  if (active) return;
  strokes.length = 0;
  scheduleRender();
  ask(0);
}

ui.undo.addEventListener("click", undo);
ui.clear.addEventListener("click", clearAll);
document.addEventListener("keydown", (event) => {
  if ((event.ctrlKey || event.metaKey) && event.key === "z") { event.preventDefault(); undo(); }
  if (event.key === "Escape") clearAll();
});

// --- asking the server ---

function ask(delay) {
  clearTimeout(timer);
  timer = setTimeout(predict, delay);
}

function upload() {
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = UPLOAD_SIDE;
  drawStrokes(canvas.getContext("2d"), UPLOAD_SIDE);
  return canvas.toDataURL("image/png");
}

async function predict() {
  if (inFlight) inFlight.abort();
  const mine = ++asked;
  if (!strokes.length) {
    inFlight = null;
    showBlank();
    return;
  }
  inFlight = new AbortController();
  result.dataset.busy = "true";
  try {
    const response = await fetch("v1/predict?include_input=true", {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ image: upload() }), signal: inFlight.signal,
    });
    const body = await response.json();
    if (mine !== asked) return;  // a newer drawing has been sent since
    if (!response.ok) throw new Error(body.detail || `HTTP ${response.status}`);
    body.blank ? showBlank("Too little ink to read: draw bigger.") : showAnswer(body);
  } catch (error) {
    if (error.name !== "AbortError" && mine === asked) showError(error);
  } finally {
    if (mine === asked) delete result.dataset.busy;
  }
}

// --- showing the answer ---

function buildBars() {
  for (let d = 0; d < 10; d++) {
    const li = document.createElement("li");
    li.innerHTML = `<span class="label">${d}</span><span class="track"><span class="fill"></span></span>` +
      `<span class="pct">–</span>`;
    ui.bars.appendChild(li);
  }
}

function setBars(probabilities, top) {
  [...ui.bars.children].forEach((li, d) => {
    const p = probabilities ? probabilities[d] : 0;
    li.querySelector(".fill").style.width = `${(100 * p).toFixed(1)}%`;
    li.querySelector(".pct").textContent = probabilities ? percent(p) : "–";
    li.classList.toggle("top", d === top);
  });
}

function percent(p) {
  return p >= 0.995 ? "100%" : p < 0.005 && p > 0 ? "<1%" : `${Math.round(100 * p)}%`;
}

function showAnswer(body) {
  if (body.not_digit) return showNotDigit(body);
  result.dataset.state = body.unsure ? "unsure" : "guess";
  ui.digit.textContent = String(body.digit);
  ui.verdict.textContent = body.unsure ? `Maybe a ${body.digit}?` : `It's a ${body.digit}`;
  const second = body.top3[1];
  ui.detail.textContent = `${percent(body.probability)} sure` +
    (second && second.probability >= 0.01 ? ` · next best ${second.digit} (${percent(second.probability)})` : "");
  ui.seen.src = `data:image/png;base64,${body.input_png}`;
  ui.seen.hidden = false;
  setBars(body.probabilities, body.digit);
}

function showNotDigit(body) {
  result.dataset.state = "notdigit";
  ui.digit.textContent = "✗";
  ui.verdict.textContent = "Not a digit";
  const closest = body.top3[0];
  ui.detail.textContent = `${percent(body.probability)} sure this is no digit` +
    (closest ? ` · closest digit ${closest.digit} (${percent(closest.probability)})` : "");
  ui.seen.src = `data:image/png;base64,${body.input_png}`;
  ui.seen.hidden = false;
  setBars(body.probabilities, -1);
}

function showBlank(why) {
  result.dataset.state = "blank";
  ui.digit.textContent = "";
  ui.verdict.textContent = "Draw a digit";
  ui.detail.textContent = why || "The answer and the model's confidence in each digit appear here.";
  ui.seen.removeAttribute("src");
  ui.seen.hidden = true;
  setBars(null, -1);
}

function showError(error) {
  result.dataset.state = "error";
  ui.digit.textContent = "!";
  ui.verdict.textContent = "No answer";
  ui.detail.textContent = error instanceof TypeError ? "The server cannot be reached." : error.message;
}

async function showModel() {
  try {
    const info = await (await fetch("v1/model")).json();
    const accuracy = info.test_accuracy ? ` · ${(100 * info.test_accuracy).toFixed(2)}% on MNIST test` : "";
    ui.model.textContent = `model ${info.name} (${info.version})${accuracy}`;
  } catch {
    ui.model.textContent = "model: unknown";
  }
}

buildBars();
showBlank();
new ResizeObserver(fitCanvas).observe(pad);
fitCanvas();
showModel();
