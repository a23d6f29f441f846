// Reading on this device: the model file's ONNX graph runs in the page through onnxruntime-web
// (WebAssembly, vendored in static/vendor/ by `make web-vendor`; nothing is fetched from elsewhere), on
// the digit that preprocess.js cut out, with the calibration model/web.json carries. The answer has the
// shape of POST /v1/predict's JSON, so the page shows both the same way. No DOM here.
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
  const response = await fetch(`${base}${manifest.digit.file}`);
  if (!response.ok) throw new Error(`${base}${manifest.digit.file}: HTTP ${response.status}`);
  const session = await ort.InferenceSession.create(new Uint8Array(await response.arrayBuffer()),
    { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
  const [input] = session.inputNames, [output] = session.outputNames;
  const run = async (image) => {
    const result = await session.run({ [input]: new ort.Tensor("uint8", image, [1, 28, 28]) });
    return Float32Array.from(result[output].data);
  };
  await run(new Uint8Array(28 * 28));  // the first run sets up the kernels: part of loading, not of reading
  const loadMs = performance.now() - start;
  return {
    loadMs,
    async readDigit(rgba, width, height) {
      const seen = preprocess(rgba, width, height);
      if (seen.blank) return blankAnswer(seen.image);
      const probs = calibrated(await run(seen.image), manifest.digit.temperature);
      return answer(probs, seen.image, manifest.digit.decline, manifest.unsure_below);
    },
  };
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

// inference.recognizer.Recognizer._answer: the digit, or "not a digit" at or above the decline threshold
export function answer(probs, image, decline, unsureBelow) {
  const digits = Array.from(probs.slice(0, DIGITS));
  const notDigit = probs.length > DIGITS ? probs[DIGITS] : 0;
  const order = digits.map((p, d) => d).sort((a, b) => digits[b] - digits[a] || b - a);  // ties: as NumPy
  const top3 = order.slice(0, 3).map((d) => ({ digit: d, probability: digits[d] }));
  const declined = notDigit >= decline;
  const probability = declined ? notDigit : top3[0].probability;
  return { digit: declined ? null : top3[0].digit, probability, probabilities: digits, top3,
           unsure: probability < unsureBelow, blank: false, not_digit: declined, not_digit_probability: notDigit,
           input: image };
}

function blankAnswer(image) {
  return { digit: null, probability: 0, probabilities: new Array(DIGITS).fill(0), top3: [], unsure: false,
           blank: true, not_digit: false, not_digit_probability: 0, input: image };
}
