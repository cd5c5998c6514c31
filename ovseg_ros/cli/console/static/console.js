// ovseg console page: the live view of one camera of a running node, its legend, the
// vocabulary editor, a pixel's classes and phrase queries. Plain JavaScript modules, no build
// step, no third-party code; every request goes to the console that served this page.
import {
  $, api, cameraName, clearLayer, live, make, marks, setResult, stampText, swatch, text, view,
} from "./common.js";
import { drawBoxes } from "./boxes.js";
import { legend, onFrame } from "./frames.js";
import { clearQuery, onQueryInput, queryNow } from "./query.js";

function connect() {
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const ws = new WebSocket(scheme + location.host + "/ws");
  ws.binaryType = "arraybuffer";
  view.ws = ws;
  ws.onopen = () => { view.retry = 1000; };
  ws.onmessage = (ev) => {
    if (typeof ev.data === "string") onEvent(JSON.parse(ev.data));
    else onFrame(ev.data, send);
  };
  ws.onclose = () => {
    view.ws = null;
    const wait = view.retry;
    view.retry = Math.min(view.retry * 2, 10000);
    connection(`console connection lost; reconnecting in ${Math.round(wait / 1000)} s`, "bad");
    setTimeout(connect, wait);
  };
}

function send(message) {
  if (view.ws && view.ws.readyState === WebSocket.OPEN) view.ws.send(JSON.stringify(message));
}

function connection(message, kind) {
  const el = $("connection");
  text(el, message);
  el.className = kind || "";
}

function watch() {
  if (view.camera !== null) send({ type: "watch", camera: view.camera, view: view.mode });
}

function onEvent(ev) {
  if (ev.type === "hello") {
    view.node = ev.node;
    text($("node"), ev.node);
    onCameras(ev);
    if (ev.vocabulary) onVocabulary(ev.vocabulary);
  } else if (ev.type === "cameras") {
    onCameras(ev);
  } else if (ev.type === "vocabulary") {
    onVocabulary(ev);
  } else if (ev.type === "delivery") {
    view.deliveryMs = ev.ms;
  } else if (ev.type === "problem") {
    text($("status"), ev.message);
  }
}

function onCameras(ev) {
  if (!ev.found) connection(`node ${view.node} not found (waiting for it)`, "bad");
  else connection(`connected to ${view.node}`, "good");
  const select = $("camera");
  const cameras = ev.cameras || [];
  const same = cameras.length === view.cameras.length &&
    cameras.every((c, i) => c === view.cameras[i]);
  if (!same) {
    view.cameras = cameras;
    select.replaceChildren(...cameras.map((c) => {
      const opt = make("option", "", cameraName(c));
      opt.value = c;
      return opt;
    }));
  }
  if (cameras.length && !cameras.includes(view.camera)) {
    view.camera = cameras[0];
    select.value = view.camera;
    clearQuery(false);
    watch();
  } else if (view.camera !== null) {
    select.value = view.camera;
    watch();  // a reconnected console learns what this page watches
  }
}

// ---- vocabulary ----------------------------------------------------------------------------

function onVocabulary(vocab) {
  view.vocab = vocab;
  view.colours = new Map(vocab.labels.map((l) => [l.id, l.rgb]));
  let top = 0;
  for (const l of vocab.labels) top = Math.max(top, l.id);
  // One packed RGBA word per id (little-endian bytes r, g, b, a), grey for unknown ids.
  const table = new Uint32Array(Math.max(top + 1, 256)).fill(0xff808080);
  for (const l of vocab.labels) {
    table[l.id] = (255 << 24 | l.rgb[2] << 16 | l.rgb[1] << 8 | l.rgb[0]) >>> 0;
  }
  view.table = table;
  const box = $("vocab");
  if (document.activeElement !== box && !box.dataset.edited) box.value = namesOf(vocab).join(", ");
  if (view.frame) legend(view.frame.summary);
}

function namesOf(vocab) {
  return vocab.labels.filter((l) => l.id !== 0).map((l) => l.name);
}

async function apply(ev) {
  ev.preventDefault();
  const names = $("vocab").value.split(/[,\n]/).map((s) => s.trim()).filter((s) => s);
  const out = $("vocab-result"), button = $("apply");
  button.disabled = true;
  setResult(out, "applying…");
  const res = await api("POST", "/api/prompts", { prompts: names });
  button.disabled = false;
  if (res.ok) {
    delete $("vocab").dataset.edited;
    const ids = res.ids || [];
    setResult(out, `applied: ${res.names.map((n, i) => `${ids[i]} ${n}`).join(", ")}`, "good");
  } else {
    setResult(out, res.message || "refused", "bad");  // the node's own reason, shown as is
  }
}

// ---- a pixel's classes ---------------------------------------------------------------------

function pixelAt(ev) {
  const rect = live.getBoundingClientRect();
  const u = Math.floor((ev.clientX - rect.left) * live.width / rect.width);
  const v = Math.floor((ev.clientY - rect.top) * live.height / rect.height);
  return [Math.min(Math.max(u, 0), live.width - 1), Math.min(Math.max(v, 0), live.height - 1)];
}

async function askPixel(u, v) {
  if (view.pixel.inFlight) { view.pixel.pending = [u, v]; return; }
  view.pixel.inFlight = true;
  drawMarks(u, v);
  const panel = $("pixel");
  const res = await api("POST", "/api/pixel", { camera: view.camera, u, v });
  view.pixel.inFlight = false;
  if (!res.ok) {
    setResult(panel, res.message || "refused", "bad");  // a busy answer: shown, not retried
  } else {
    panel.classList.remove("bad", "good");
    const head = make("p");
    head.append(`Pixel (${u}, ${v}): `, swatch(res.class_id), make("strong", "", res.class_name),
      ` · confidence ${res.confidence.toFixed(3)}`);
    const stamp = stampText(res.stamp);
    const list = make("ol");
    for (const r of res.ranked) {
      const li = make("li");
      li.append(swatch(r.id), make("span", "", r.name), ` ${r.probability.toFixed(3)}`);
      list.append(li);
    }
    panel.replaceChildren(head, list);
    // The node answers from its newest frame, which may be newer than the one shown.
    panel.append(make("p", "muted small", `from the node's frame ${stamp}` +
      (stamp === live.dataset.stamp ? " (shown)" : " (its newest)")));
    if (res.note) panel.append(make("p", "muted small", res.note));
    panel.dataset.u = String(u);
    panel.dataset.v = String(v);
  }
  const next = view.pixel.pending;
  view.pixel.pending = null;
  if (next) askPixel(next[0], next[1]);
}

function drawMarks(u, v) {
  view.pixel.at = [u, v];
  clearLayer(marks);
  const ctx = marks.getContext("2d");
  const r = Math.max(4, Math.round(marks.width / 80));
  ctx.lineWidth = Math.max(1, r / 3);
  ctx.strokeStyle = "#fff";
  ctx.beginPath();
  ctx.arc(u + 0.5, v + 0.5, r, 0, 2 * Math.PI);
  ctx.stroke();
}

// ---- wiring --------------------------------------------------------------------------------

$("camera").addEventListener("change", (ev) => {
  view.camera = ev.target.value;
  view.frame = null;
  clearQuery(false);
  clearLayer(marks);
  drawBoxes();
  watch();
});
$("view").addEventListener("change", (ev) => { view.mode = ev.target.value; watch(); });
$("show-boxes").addEventListener("change", (ev) => {
  view.showBoxes = ev.target.checked;
  drawBoxes();
});
$("vocab-form").addEventListener("submit", apply);
$("vocab").addEventListener("input", () => { $("vocab").dataset.edited = "1"; });
$("reset").addEventListener("click", () => {
  delete $("vocab").dataset.edited;
  if (view.vocab) $("vocab").value = namesOf(view.vocab).join(", ");
  setResult($("vocab-result"), "");
});
$("query").addEventListener("input", onQueryInput);
$("query-form").addEventListener("submit", (ev) => { ev.preventDefault(); queryNow(); });
$("clear-query").addEventListener("click", () => clearQuery(true));
live.addEventListener("click", (ev) => {
  if (!view.frame) return;
  const [u, v] = pixelAt(ev);
  askPixel(u, v);
});
$("view").value = view.mode;
view.showBoxes = $("show-boxes").checked;  // a reloaded page may keep the box unticked
connect();
