// The drawing page: strokes on a canvas → PNG → POST v1/predict (one digit) or v1/number (a whole
// number) → the answer. Plain JS, no build step, no network beyond this server. URLs are relative,
// so the page also works behind a path prefix.
"use strict";

const BRUSH = 0.075;       // stroke width ÷ the pad's height: MNIST-like strokes for digits as tall as the pad
const UPLOAD_HEIGHT = 280; // pixels of the picture sent to the server (it reads digits at ≤ 96 px tall anyway)
const DEBOUNCE_MS = 120;   // wait this long after the last pointer move before asking
const INK = "#111";
const PAPER = "#fff";
const $ = (id) => document.getElementById(id);

// --- a pad: strokes drawn with any pointer, undo, clear, and the picture to send ---

class Pad {
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

  upload() {
    const canvas = document.createElement("canvas");
    canvas.height = UPLOAD_HEIGHT;
    canvas.width = Math.round(UPLOAD_HEIGHT * this.aspect);
    draw(canvas.getContext("2d"), this.strokes, UPLOAD_HEIGHT, this.aspect);
    return canvas.toDataURL("image/png");
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

// --- asking the server: the newest drawing wins, older answers are dropped ---

function asker(route, pad, result, show, blank) {
  let timer = 0, asked = 0, inFlight = null;
  async function ask() {
    if (inFlight) inFlight.abort();
    const mine = ++asked;
    if (!pad.strokes.length) { inFlight = null; blank(); return; }
    inFlight = new AbortController();
    result.dataset.busy = "true";
    try {
      const response = await fetch(route, {
        method: "POST", headers: { "content-type": "application/json" },
        body: JSON.stringify({ image: pad.upload() }), signal: inFlight.signal,
      });
      const body = await response.json();
      if (mine !== asked) return;  // a newer drawing has been sent since
      if (!response.ok) throw new Error(body.detail || `HTTP ${response.status}`);
      show(body);
    } catch (error) {
      if (error.name !== "AbortError" && mine === asked) showError(result, error);
    } finally {
      if (mine === asked) delete result.dataset.busy;
    }
  }
  return (delay) => { clearTimeout(timer); timer = setTimeout(ask, delay); };
}

function percent(p) {
  return p >= 0.995 ? "100%" : p < 0.005 && p > 0 ? "<1%" : `${Math.round(100 * p)}%`;
}

function showError(result, error) {
  result.dataset.state = "error";
  const [big, verdict, detail] = result.id === "result" ? [$("digit"), $("verdict"), $("detail")]
    : [$("number-text"), $("number-verdict"), $("number-detail")];
  big.textContent = "!";
  verdict.textContent = "No answer";
  detail.textContent = error instanceof TypeError ? "The server cannot be reached." : error.message;
}

// --- one digit ---

const result = $("result");
const bars = $("bars");
const digitPad = new Pad($("pad"), $("hint"), $("undo"), $("clear"), 1, (delay) => askDigit(delay));
const askDigit = asker("v1/predict?include_input=true", digitPad, result, showAnswer, () => showBlank());

for (let d = 0; d < 10; d++) {
  const li = document.createElement("li");
  li.innerHTML = `<span class="label">${d}</span><span class="track"><span class="fill"></span></span>` +
    `<span class="pct">–</span>`;
  bars.appendChild(li);
}

function setBars(probabilities, top) {
  [...bars.children].forEach((li, d) => {
    const p = probabilities ? probabilities[d] : 0;
    li.querySelector(".fill").style.width = `${(100 * p).toFixed(1)}%`;
    li.querySelector(".pct").textContent = probabilities ? percent(p) : "–";
    li.classList.toggle("top", d === top);
  });
}

function showAnswer(body) {
  // a new drawing's answer: the last teach message is about an earlier one (a blank pad keeps it, since
  // teaching clears the pad and the "Saved" line must stay readable)
  $("teach-status").textContent = "";
  if (body.blank) return showBlank("Too little ink to read: draw bigger.");
  showSeen(body.input_png);
  if (body.not_digit) {
    result.dataset.state = "notdigit";
    $("digit").textContent = "✗";
    $("verdict").textContent = "Not a digit";
    const closest = body.top3[0];
    $("detail").textContent = `${percent(body.probability)} sure this is no digit` +
      (closest ? ` · closest digit ${closest.digit} (${percent(closest.probability)})` : "");
    return setBars(body.probabilities, -1);
  }
  result.dataset.state = body.unsure ? "unsure" : "guess";
  $("digit").textContent = String(body.digit);
  $("verdict").textContent = body.unsure ? `Maybe a ${body.digit}?` : `It's a ${body.digit}`;
  const second = body.top3[1];
  $("detail").textContent = `${percent(body.probability)} sure` +
    (second && second.probability >= 0.01 ? ` · next best ${second.digit} (${percent(second.probability)})` : "");
  setBars(body.probabilities, body.digit);
}

function showSeen(png) {
  $("seen").src = `data:image/png;base64,${png}`;
  $("seen").hidden = false;
}

function showBlank(why) {
  result.dataset.state = "blank";
  $("digit").textContent = "";
  $("verdict").textContent = "Draw a digit";
  $("detail").textContent = why || "The answer and the model's confidence in each digit appear here.";
  $("seen").removeAttribute("src");
  $("seen").hidden = true;
  setBars(null, -1);
}

// --- a whole number ---

const NUMBER_ASPECT = 3;   // the number pad is three times as wide as tall
const numberResult = $("number-result");
const numberPad = new Pad($("number-pad"), $("number-hint"), $("number-undo"), $("number-clear"), NUMBER_ASPECT,
  (delay) => askNumber(delay));
const askNumber = asker("v1/number", numberPad, numberResult, showNumber, () => showNoNumber());

function showNumber(body) {
  if (body.blank) return showNoNumber("Too little ink to read: write bigger.");
  numberResult.dataset.state = body.unsure ? "unsure" : "guess";
  $("number-text").textContent = body.number;
  $("number-verdict").textContent = body.unsure ? `Maybe ${body.number}?` : `It's ${body.number}`;
  $("number-detail").textContent = `${body.digits.length} digit${body.digits.length === 1 ? "" : "s"} · ` +
    `${percent(body.probability)} sure of the whole number`;
  const list = $("number-digits"), boxes = $("number-boxes");
  list.replaceChildren();
  boxes.replaceChildren();
  const scale = 100 / (UPLOAD_HEIGHT * NUMBER_ASPECT);  // upload pixels → % of the pad's width
  for (const d of body.digits) {
    const shown = d.not_digit ? "?" : String(d.digit);
    const item = document.createElement("li");
    item.className = d.not_digit || d.unsure ? "unsure" : "";
    item.innerHTML = `<span class="label">${shown}</span><span class="pct">${percent(d.probability)}</span>`;
    list.appendChild(item);
    const box = document.createElement("div");
    box.className = `box ${item.className}`;
    Object.assign(box.style, { left: `${d.box.x * scale}%`, top: `${(100 * d.box.y) / UPLOAD_HEIGHT}%`,
      width: `${d.box.width * scale}%`, height: `${(100 * d.box.height) / UPLOAD_HEIGHT}%` });
    box.dataset.label = `${shown} ${percent(d.probability)}`;
    boxes.appendChild(box);
  }
}

function showNoNumber(why) {
  numberResult.dataset.state = "blank";
  $("number-text").textContent = "";
  $("number-verdict").textContent = "Write a number";
  $("number-detail").textContent = why || "Each digit, its box on the pad and the model's confidence appear here.";
  $("number-digits").replaceChildren();
  $("number-boxes").replaceChildren();
}

// --- modes, keys, the model line ---

function setMode(mode) {
  const number = mode === "number";
  $("digit-mode").hidden = number;
  $("number-mode").hidden = !number;
  $("mode-digit").setAttribute("aria-pressed", String(!number));
  $("mode-number").setAttribute("aria-pressed", String(number));
  $("intro").textContent = number ? "Write a whole number on one line. Its digits may touch."
    : "Draw one digit, 0 to 9. The model reads it as you draw.";
  (number ? numberPad : digitPad).fit();
}

$("mode-digit").addEventListener("click", () => { history.replaceState(null, "", "#digit"); setMode("digit"); });
$("mode-number").addEventListener("click", () => { history.replaceState(null, "", "#number"); setMode("number"); });
document.addEventListener("keydown", (event) => {
  const pad = $("number-mode").hidden ? digitPad : numberPad;
  if ((event.ctrlKey || event.metaKey) && event.key === "z") { event.preventDefault(); pad.undo(); }
  if (event.key === "Escape") pad.clear();
});

async function showModel() {
  try {
    const info = await (await fetch("v1/model")).json();
    const accuracy = info.test_accuracy ? ` · ${(100 * info.test_accuracy).toFixed(2)}% on MNIST test` : "";
    $("model").textContent = `model ${info.name} (${info.version})${accuracy}`;
    if (info.collect) setUpTeaching();
  } catch {
    $("model").textContent = "model: unknown";
  }
}

// --- teaching (digitrec serve --collect DIR): the drawn digit, saved under the digit the user names ---

function setUpTeaching() {
  $("teach").hidden = false;
  for (let d = 0; d < 10; d++) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = String(d);
    button.addEventListener("click", () => teach(d));
    $("teach-digits").appendChild(button);
  }
}

async function teach(digit) {
  if (!digitPad.strokes.length) {
    $("teach-status").textContent = "Draw the digit first.";
    return;
  }
  try {
    const response = await fetch("v1/collect", {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ image: digitPad.upload(), label: digit }),
    });
    const body = await response.json();
    if (!response.ok) throw new Error(body.detail || `HTTP ${response.status}`);
    $("teach-status").textContent = `Saved as a ${digit} (${body.count} ${digit}s so far). Thank you!`;
    digitPad.clear();
  } catch (error) {
    $("teach-status").textContent = error instanceof TypeError ? "The server cannot be reached." : error.message;
  }
}

setMode(location.hash === "#number" ? "number" : "digit");
showBlank();
showNoNumber();
showModel();
