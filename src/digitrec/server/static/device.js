// Reading on this device: the model file's ONNX graph runs in the page through onnxruntime-web
// (WebAssembly, vendored in static/vendor/ by `make web-vendor`; nothing is fetched from elsewhere), on
// the digit that preprocess.js cut out, with the calibration model/web.json carries. The answer has the
// shape of POST /v1/predict's JSON, so the page shows both the same way. No DOM here.
import { MAX_DIGITS, boxOf, digitOf, emissions, line, parts, readerInput, shareProbabilities } from "./numbers.js";
import { preprocess } from "./preprocess.js";

const f32 = Math.fround;
const DIGITS = 10; // the not-a-digit probability, when the model has it, is output DIGITS

/** Why this browser cannot read here, or "" when it can. */
export function cannotRunHere() {
  return typeof WebAssembly === "object" && typeof WebAssembly.instantiate === "function" ? ""
    : "this browser has no WebAssembly";
}

/** The device reader: {readDigit(rgba, width, height), loadMs}, once the model has loaded. */
export async function loadDeviceReader(manifest, base = "model/") {
  const why = cannotRunHere();
  if (why) throw new Error(why);
  const start = performance.now();
  const vendor = new URL("./vendor/", import.meta.url).href;
  const ort = await import(`${vendor}ort.wasm.min.mjs`);
  ort.env.wasm.wasmPaths = vendor;
  ort.env.wasm.numThreads = 1;  // 28×28 digits: a second thread costs more than it saves (and needs isolation)
  ort.env.wasm.proxy = false;
  const session = await open(ort, `${base}${manifest.digit.file}`);
  const run = async (images) => {  // n 28×28 digits → n rows of calibrated probabilities
    const n = images.length, batch = new Uint8Array(n * 784);
    images.forEach((image, i) => batch.set(image, i * 784));
    const result = await session.run({ [session.inputNames[0]]: new ort.Tensor("uint8", batch, [n, 28, 28]) });
    const probs = result[session.outputNames[0]].data, classes = probs.length / n;
    return images.map((_, i) => calibrated(probs.slice(i * classes, (i + 1) * classes), manifest.digit.temperature));
  };
  await run([new Uint8Array(28 * 28)]);  // the first run sets up the kernels: part of loading, not of reading
  const loadMs = performance.now() - start;
  // the line reader loads after the digit model, in the background: a digit is read without waiting for it
  const lineReader = manifest.number ? open(ort, `${base}${manifest.number.file}`) : null;
  if (lineReader) lineReader.catch(() => {});  // a failure is reported when a number is read
  const frames = async ({ data, width }) => {
    const reader = await lineReader;
    const result = await reader.run({ [reader.inputNames[0]]: new ort.Tensor("float32", data, [1, 1, 32, width]) });
    const out = result[reader.outputNames[0]];
    return [out.data, out.dims[1]];
  };
  const decide = (probs, image) => answer(probs, image, manifest.digit.not_digit_threshold, manifest.unsure_below);
  return {
    loadMs,
    numbers: Boolean(lineReader),
    async readDigit(rgba, width, height) {
      const seen = preprocess(rgba, width, height);
      if (seen.blank) return blankAnswer(seen.image);
      return decide((await run([seen.image]))[0], seen.image);
    },
    // Recognizer.read_number: the line reader places the digits, the digit model reads those that stand apart
    async readNumber(rgba, width, height) {
      const ln = line(rgba, width, height);
      if (ln.blank || !ln.groups.length) return numberFrom([]);
      const input = readerInput(ln);
      const [probs, count] = await frames(input);
      const pieces = parts(ln, emissions(probs, count, input.scale));
      if (pieces.length > MAX_DIGITS) throw new Error(`The drawing holds more than ${MAX_DIGITS} digits.`);
      const images = pieces.map((p) => digitOf(ln, p));
      const ask = pieces.flatMap((p, i) => (p.emission ? [] : [i]));
      const read = ask.length ? await run(ask.map((i) => images[i])) : [];
      return numberFrom(pieces.map((p, i) => ({
        ...decide(p.emission ? shareProbabilities(p.emission) : read[ask.indexOf(i)], images[i]),
        box: boxOf(ln, p) })));
    },
  };
}

async function open(ort, url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return ort.InferenceSession.create(new Uint8Array(await response.arrayBuffer()),
    { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
}

// recognizer.number_from: the digits' text ("?" for no digit), the chance all are right, unsure if any is
function numberFrom(digits) {
  if (!digits.length) return { number: "", digits: [], probability: 0, unsure: false, blank: true };
  return { number: digits.map((d) => (d.not_digit ? "?" : String(d.digit))).join(""), digits, blank: false,
           probability: digits.reduce((p, d) => p * (d.not_digit ? 0 : d.probability), 1),
           unsure: digits.some((d) => d.unsure || d.not_digit) };
}

// models.calibration.with_temperature: softmax(log p / T), in float64, stored as float32
export function calibrated(probs, t) {
  if (!t) return probs;
  const logp = Array.from(probs, (p) => Math.log(Math.max(p, 1e-30)) / t);
  const top = Math.max(...logp);
  const e = logp.map((v) => Math.exp(v - top));
  const sum = e.reduce((a, b) => a + b, 0);
  return Float32Array.from(e, (v) => f32(v / sum));
}

// inference.recognizer.Recognizer._answer: the digit, or "not a digit" at or above the not-a-digit threshold
export function answer(probs, image, notDigitThreshold, unsureBelow) {
  const digits = Array.from(probs.slice(0, DIGITS));
  const notDigit = probs.length > DIGITS ? probs[DIGITS] : 0;
  const order = digits.map((p, d) => d).sort((a, b) => digits[b] - digits[a] || b - a);  // ties: as NumPy
  const top3 = order.slice(0, 3).map((d) => ({ digit: d, probability: digits[d] }));
  const saysNotDigit = notDigit >= notDigitThreshold;
  const probability = saysNotDigit ? notDigit : top3[0].probability;
  return { digit: saysNotDigit ? null : top3[0].digit, probability, probabilities: digits, top3,
           unsure: probability < unsureBelow, blank: false, not_digit: saysNotDigit, not_digit_probability: notDigit,
           input: image };
}

function blankAnswer(image) {
  return { digit: null, probability: 0, probabilities: new Array(DIGITS).fill(0), top3: [], unsure: false,
           blank: true, not_digit: false, not_digit_probability: 0, input: image };
}
