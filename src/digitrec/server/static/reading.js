// Where the page reads: on this device (device.js, the default) or on the server (POST v1/predict,
// v1/number), and the switch between them. A page served by `digitrec serve` has both; the static site
// (`digitrec export --format web`) has only the device; a browser without WebAssembly only the server.
import { cannotRunHere, loadDeviceReader } from "./device.js";

export class Reading {
  constructor() {
    this.manifest = null;   // model/web.json, or null when the page has none (an older server)
    this.server = false;    // a digitrec server answers v1/… beside the page
    this.where = "server";  // "device" or "server": where the next drawing is read
    this.device = null;     // a promise of the device reader, while it loads or once it has
    this.whyNot = "";       // why the device cannot read, once known
    this.listeners = [];
  }

  /** Find out what this page can do: its manifest, the server, the device. */
  async start() {
    try {
      const response = await fetch("model/web.json", { cache: "no-cache" });
      if (response.ok) this.manifest = await response.json();
    } catch { /* no manifest: below, the server is asked */ }
    this.server = this.manifest ? Boolean(this.manifest.server) : await serverAnswers();
    this.whyNot = !this.manifest ? "this page has no model of its own"
      : this.manifest.vendor === false ? "onnxruntime-web is not installed beside the page (make web-vendor)"
      : cannotRunHere();
    if (!this.whyNot) {
      this.device = loadDeviceReader(this.manifest);
      this.device.catch((error) => this.deviceFailed(error));
      this.where = "device";
    }
    this.changed();
  }

  deviceFailed(error) {
    this.whyNot = `the model could not start here (${error.message || error})`;
    this.device = null;
    if (this.where === "device") this.where = "server";
    this.changed();
  }

  /** Read on "device" or "server" from now on (when that is possible). */
  use(where) {
    if (where === "device" && !this.device) return;
    if (where === "server" && !this.server) return;
    this.where = where;
    this.changed();
  }

  onChange(listener) { this.listeners.push(listener); }
  changed() { for (const listener of this.listeners) listener(this); }

  /** One line on what reads the drawings, for the page. */
  status() {
    if (this.where === "device" && this.device) return "Reading on this device: nothing leaves it.";
    if (this.server) return this.whyNot ? `Reading on the server: ${this.whyNot}.` : "Reading on the server.";
    return `Cannot read here: ${this.whyNot || "no model"}, and there is no server.`;
  }

  /** The answer for one digit on `pad`, as POST v1/predict gives it (with `input` or `input_png`). */
  async readDigit(pad, signal) {
    if (this.where === "device" && this.device) {
      const reader = await this.device;
      const { data, width, height } = pad.pixels();
      return reader.readDigit(data, width, height);
    }
    if (!this.server) throw new Error(this.status());
    return post("v1/predict?include_input=true", pad, signal);
  }

  /** A whole number, as POST v1/number gives it: on the device when the page has the line reader. */
  async readNumber(pad, signal) {
    if (this.where === "device" && this.device) {
      const reader = await this.device;
      if (reader.numbers) {
        const { data, width, height } = pad.pixels();
        try {
          return await reader.readNumber(data, width, height);
        } catch (error) {
          if (!this.server) throw error;  // e.g. the line reader did not load: the server reads instead
        }
      }
    }
    if (!this.server) throw new Error("Numbers are read on the server, and this page has none: one digit at a time here.");
    return post("v1/number", pad, signal);
  }
}

async function post(route, pad, signal) {
  const response = await fetch(route, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ image: pad.upload() }), signal,
  });
  const body = await response.json();
  if (!response.ok) throw new Error(body.detail || `HTTP ${response.status}`);
  return body;
}

async function serverAnswers() {
  try {
    return (await fetch("healthz")).ok;
  } catch {
    return false;
  }
}
