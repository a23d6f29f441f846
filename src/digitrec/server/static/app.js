// The drawing page: strokes on a pad (pad.js) → read on this device or on the server (reading.js) →
// the answer, for one digit or a whole number. Plain JS modules, no build step, no network beyond the
// page's own origin. URLs are relative, so the page also works behind a path prefix and as a static site.
import { Pad, UPLOAD_HEIGHT } from "./pad.js";
import { Reading } from "./reading.js";

const $ = (id) => document.getElementById(id);
const reading = new Reading();

// --- asking: the newest drawing wins, older answers are dropped ---

function asker(read, pad, result, show, blank) {
  let timer = 0, asked = 0, inFlight = null;
  async function ask() {
    if (inFlight) inFlight.abort();
    const mine = ++asked;
    if (!pad.strokes.length) { inFlight = null; blank(); return; }
    inFlight = new AbortController();
    result.dataset.busy = "true";
    try {
      const body = await read(pad, inFlight.signal);
      if (mine !== asked) return;  // a newer drawing has been asked about since
      show(body);
    } catch (error) {
      if (error.name !== "AbortError" && mine === asked) showError(result, error);
    } finally {
      if (mine === asked) delete result.dataset.busy;
    }
  }
  const schedule = (delay) => { clearTimeout(timer); timer = setTimeout(ask, delay); };
  schedule.now = ask;
  return schedule;
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
  detail.textContent = error instanceof TypeError && reading.where === "server" ? "The server cannot be reached."
    : error.message;
}

// --- one digit ---

const result = $("result");
const bars = $("bars");
const digitPad = new Pad($("pad"), $("hint"), $("undo"), $("clear"), 1, (delay) => askDigit(delay));
const askDigit = asker((pad, signal) => reading.readDigit(pad, signal), digitPad, result, showAnswer,
  () => showBlank());

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
  showSeen(body);
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

// what the model saw: the server sends a PNG, the device has the pixels
function showSeen(body) {
  $("seen").src = body.input_png ? `data:image/png;base64,${body.input_png}` : pixelsUrl(body.input);
  $("seen").hidden = false;
}

function pixelsUrl(pixels) {
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = 28;
  const ctx = canvas.getContext("2d"), picture = ctx.createImageData(28, 28);
  pixels.forEach((v, i) => picture.data.set([v, v, v, 255], 4 * i));
  ctx.putImageData(picture, 0, 0);
  return canvas.toDataURL("image/png");
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
const askNumber = asker((pad, signal) => reading.readNumber(pad, signal), numberPad, numberResult, showNumber,
  () => showNoNumber());

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

// --- where to read: the switch, the model line ---

function showReading() {
  const device = reading.where === "device";
  $("read-device").setAttribute("aria-pressed", String(device));
  $("read-server").setAttribute("aria-pressed", String(!device));
  $("read-device").disabled = !reading.device;
  $("read-server").disabled = !reading.server;
  $("read-status").textContent = reading.status();
  document.body.dataset.reading = reading.where;
  document.body.dataset.server = String(reading.server);
  if (!reading.device && !reading.server) showError(result, new Error(reading.status()));
}

function readAgain() {  // the drawings on the pads, read again where the switch now says
  if (digitPad.strokes.length) askDigit.now();
  if (numberPad.strokes.length) askNumber.now();
}

$("read-device").addEventListener("click", () => { reading.use("device"); readAgain(); });
$("read-server").addEventListener("click", () => { reading.use("server"); readAgain(); });

async function showModel() {
  const m = reading.manifest && reading.manifest.digit;
  if (m) {
    const accuracy = m.test_accuracy ? ` · ${(100 * m.test_accuracy).toFixed(2)}% on MNIST test` : "";
    $("model").textContent = `model ${m.name} (${m.version})${accuracy}`;
  }
  if (!reading.server) return;
  try {
    const info = await (await fetch("v1/model")).json();
    const accuracy = info.test_accuracy ? ` · ${(100 * info.test_accuracy).toFixed(2)}% on MNIST test` : "";
    $("model").textContent = `model ${info.name} (${info.version})${accuracy}`;
    if (info.collect) setUpTeaching();
  } catch {
    if (!m) $("model").textContent = "model: unknown";
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
reading.onChange(showReading);
reading.start().then(showModel);
// for the browser tests and bench/web.py: the pads and the reading, as the page uses them
window.digitrec = { reading, digitPad, numberPad, askDigit, askNumber };
