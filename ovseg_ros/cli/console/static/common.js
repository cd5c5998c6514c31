// The page's shared state and small helpers (an ES module: no build step, no third-party code).
// Names from the node are shown with textContent only: a name is never read as HTML.

export const $ = (id) => document.getElementById(id);

// The live view: a stack of canvases, bottom first: the frame (the node's overlay, or its
// labels in the node's colours), the legend's highlight (other classes dimmed), the phrase
// query's heatmap, the objects' boxes and the pixel marker. A new kind of result is one more
// layer. `layers` are at the frame's size; the boxes' layer sizes itself (boxes.js).
export const live = $("live"), dim = $("dim"), heat = $("heat"), boxes = $("boxes");
export const marks = $("marks");
export const layers = [live, dim, heat, marks];

export const view = {
  // The label view costs the node nothing; the overlay view makes it draw its overlay.
  ws: null, retry: 1000, node: "", cameras: [], camera: null, mode: "labels",
  vocab: null, colours: new Map(), table: null,
  frame: null, hover: null, paintTimes: [], deliveryMs: null, showBoxes: true,
  query: { phrase: "", inFlight: false, pending: null, live: false, lastAt: 0, answer: null },
  pixel: { inFlight: false, pending: null },
};

// Paint records, read by tests and the benchmark: each painted frame's stamp, its publication
// (stamp + the node's latency) and paint times in ms since the epoch; errors caught.
export const record = { paints: [], errors: [] };
window.ovsegConsole = record;

export function text(el, value) { el.textContent = value; return el; }

export function make(tag, className, content) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (content !== undefined) el.textContent = content;
  return el;
}

export function swatch(id) {
  const el = make("span", "swatch");
  const rgb = view.colours.get(id) || [128, 128, 128];
  el.style.background = `rgb(${rgb[0]}, ${rgb[1]}, ${rgb[2]})`;
  return el;
}

export function setResult(el, message, kind) {
  el.replaceChildren();
  el.textContent = message;
  el.classList.toggle("bad", kind === "bad");
  el.classList.toggle("good", kind === "good");
}

export function cameraName(camera) { return camera === "" ? "(default camera)" : camera; }

export function stampText(stamp) {
  return `${stamp.sec}.${String(stamp.nanosec).padStart(9, "0")}`;
}

export function clearLayer(canvas) {
  canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
}

export async function inflate(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

export function base64Bytes(text64) {
  const bin = atob(text64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

// One call of the console's JSON API; always an object with `ok` and, when not ok, `message`.
export async function api(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (err) {
    return { ok: false, message: "the console did not answer: is `ovseg console` running?" };
  }
  try {
    return await res.json();
  } catch (err) {
    return { ok: false, message: `the console answered ${res.status} without JSON` };
  }
}
