// The page mode: a photo of a page (a phone's camera or a file) → POST v1/page → every number's box and
// reading drawn over the picture. Tapping a reading corrects it; when the server collects (serve --collect),
// each digit of a corrected number is saved as a crop of the picture under its corrected digit (POST
// v1/collect, as the teach panel saves a drawn digit). Plain JS, no build step, URLs relative.
"use strict";

const $ = (id) => document.getElementById(id);
const CROP_MARGIN = 0.12;  // paper kept around a digit's box when it is collected, of the box's longer side

const state = { reading: null, asked: 0, selected: -1, collect: false };

function percent(p) {
  return p >= 0.995 ? "100%" : p < 0.005 && p > 0 ? "<1%" : `${Math.round(100 * p)}%`;
}

function errorText(error) {
  return error instanceof TypeError ? "The server cannot be reached." : error.message;
}

// --- sending a picture ---

async function send(file) {
  if (!file) return;
  const mine = ++state.asked;
  const result = $("page-result");
  closeFix();
  $("page-fix-status").textContent = "";
  showPicture(file);
  result.dataset.busy = "true";
  result.dataset.state = "reading";
  $("page-status").textContent = "Reading the page…";
  $("page-detail").textContent = file.name || "photo";
  try {
    const form = new FormData();
    form.append("file", file, file.name || "photo.jpg");
    const response = await fetch("v1/page", { method: "POST", body: form });
    const body = await response.json();
    if (mine !== state.asked) return;  // a newer picture has been chosen since
    if (!response.ok) throw new Error(body.detail || `HTTP ${response.status}`);
    await $("page-picture").decode().catch(() => {});  // boxes go over a picture laid out at its size
    if (mine === state.asked) showReading(body);
  } catch (error) {
    if (mine === state.asked) showError(error);
  } finally {
    if (mine === state.asked) delete result.dataset.busy;
  }
}

function showPicture(file) {
  const img = $("page-picture");
  if (img.src) URL.revokeObjectURL(img.src);
  img.src = URL.createObjectURL(file);
  $("page-boxes").replaceChildren();
  $("page-numbers").replaceChildren();
  $("sheet").hidden = false;
}

function showError(error) {
  state.reading = null;
  $("page-result").dataset.state = "error";
  $("page-status").textContent = "No answer";
  $("page-detail").textContent = errorText(error);
}

// --- the answer: a box over the picture and a line in the list for each number ---

function showReading(body) {
  state.reading = body;
  const count = body.numbers.length;
  $("page-result").dataset.state = count ? "found" : "none";
  $("page-status").textContent = count ? `${count} number${count === 1 ? "" : "s"} found` : "No numbers found";
  $("page-detail").textContent = count ? "Tap a reading to correct it." :
    "Nothing on this picture looks like a handwritten number.";
  const boxes = $("page-boxes"), list = $("page-numbers");
  boxes.replaceChildren();
  list.replaceChildren();
  body.numbers.forEach((n, i) => {
    boxes.appendChild(boxButton(n, i, body.width, body.height));
    list.appendChild(listItem(n, i));
  });
}

function boxButton(n, i, width, height) {
  const box = document.createElement("button");
  box.type = "button";
  box.className = `box page-box${n.unsure ? " unsure" : ""}`;  // style.css's number boxes, tab and all
  Object.assign(box.style, { left: `${(100 * n.box.x) / width}%`, top: `${(100 * n.box.y) / height}%`,
    width: `${(100 * n.box.width) / width}%`, height: `${(100 * n.box.height) / height}%` });
  box.setAttribute("aria-label", `number ${i + 1}: ${n.number}, tap to correct`);
  box.addEventListener("click", () => openFix(i));
  setLabel(box, n);
  return box;
}

function listItem(n, i) {
  const item = document.createElement("li");
  const button = document.createElement("button");
  button.type = "button";
  button.innerHTML = '<span class="reading"></span><span class="pct"></span>';
  button.addEventListener("click", () => openFix(i));
  item.appendChild(button);
  setLabel(item, n);
  return item;
}

// The reading shown on a box's tab or in a list line: the number, then its confidence (or "corrected").
function setLabel(element, n) {
  const corrected = n.corrected !== undefined;
  const text = corrected ? n.corrected : n.number;
  const note = corrected ? "corrected" : percent(n.probability);
  element.classList.toggle("corrected", corrected);
  if (element.classList.contains("box")) element.dataset.label = `${text} ${note}`;
  const reading = element.querySelector(".reading");
  if (reading) {
    reading.textContent = text;
    element.querySelector(".pct").textContent = corrected ? `was ${n.number}` : note;
    element.classList.toggle("unsure", n.unsure && !corrected);
  }
}

// --- correcting a reading ---

function openFix(i) {
  state.selected = i;
  const n = state.reading.numbers[i];
  document.querySelectorAll(".page-box, #page-numbers li").forEach((el) => el.classList.remove("selected"));
  $("page-boxes").children[i].classList.add("selected");
  $("page-numbers").children[i].classList.add("selected");
  $("page-fix").hidden = false;
  $("page-fix-input").value = n.corrected ?? n.number.replaceAll("?", "");
  $("page-fix-status").textContent = "";
  $("page-fix-input").focus();
  $("page-fix-input").select();
}

function closeFix() {
  state.selected = -1;
  $("page-fix").hidden = true;
  document.querySelectorAll(".selected").forEach((el) => el.classList.remove("selected"));
}

async function saveFix(event) {
  event.preventDefault();
  const i = state.selected;
  const text = $("page-fix-input").value.trim();
  if (i < 0 || !/^[0-9]+$/.test(text)) {
    $("page-fix-status").textContent = "Type the number's digits, 0 to 9.";
    return;
  }
  const n = state.reading.numbers[i];
  n.corrected = text;
  setLabel($("page-boxes").children[i], n);
  setLabel($("page-numbers").children[i], n);
  closeFix();
  $("page-fix-status").textContent = await collect(n, text);
}

// Each digit's crop of the picture, saved under its corrected digit: only when the correction has as many
// digits as boxes were found (otherwise which crop is which digit is unknown, and nothing is saved).
async function collect(n, text) {
  if (!state.collect) return `Corrected to ${text}.`;
  if (text.length !== n.digits.length) {
    return `Corrected to ${text}. Not saved for teaching: ${text.length} digits, but ${n.digits.length} ` +
      `box${n.digits.length === 1 ? " was" : "es were"} found.`;
  }
  try {
    for (let k = 0; k < text.length; k++) {
      const response = await fetch("v1/collect", {
        method: "POST", headers: { "content-type": "application/json" },
        body: JSON.stringify({ image: crop(n.digits[k].box), label: Number(text[k]) }),
      });
      const body = await response.json();
      if (!response.ok) throw new Error(body.detail || `HTTP ${response.status}`);
    }
    return `Corrected to ${text}; its ${text.length} digit${text.length === 1 ? "" : "s"} saved for teaching.`;
  } catch (error) {
    return `Corrected to ${text}, but not saved: ${errorText(error)}`;
  }
}

// A digit's box (page pixels, after EXIF rotation, as the browser shows the picture) with a margin, as PNG.
function crop(box) {
  const img = $("page-picture");
  const pad = Math.round(CROP_MARGIN * Math.max(box.width, box.height));
  const x = Math.max(0, box.x - pad), y = Math.max(0, box.y - pad);
  const w = Math.min(img.naturalWidth, box.x + box.width + pad) - x;
  const h = Math.min(img.naturalHeight, box.y + box.height + pad) - y;
  const canvas = document.createElement("canvas");
  canvas.width = w;
  canvas.height = h;
  canvas.getContext("2d").drawImage(img, x, y, w, h, 0, 0, w, h);
  return canvas.toDataURL("image/png");
}

// --- start ---

async function showModel() {
  try {
    const info = await (await fetch("v1/model")).json();
    $("model").textContent = `model ${info.name} (${info.version})`;
    state.collect = Boolean(info.collect);
  } catch {
    $("model").textContent = "model: unknown";
  }
}

for (const id of ["page-camera", "page-file"]) {
  $(id).addEventListener("change", (event) => { send(event.target.files[0]); event.target.value = ""; });
}
$("page-fix").addEventListener("submit", saveFix);
$("page-fix-cancel").addEventListener("click", closeFix);
document.addEventListener("keydown", (event) => { if (event.key === "Escape") closeFix(); });
showModel();
