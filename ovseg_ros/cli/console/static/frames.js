// Frames from the console: parsed, painted in the next animation frame, then acknowledged
// (the console sends the next, always the newest, only after that); the legend and the
// highlight of a hovered class.
import {
  $, cameraName, clearLayer, dim, inflate, layers, live, make, marks, record, stampText,
  swatch, text, view,
} from "./common.js";
import { drawBoxes } from "./boxes.js";
import { paintHeat, refreshQuery } from "./query.js";

export function parsePacket(buf) {
  const bytes = new Uint8Array(buf);
  if (String.fromCharCode(...bytes.subarray(0, 4)) !== "OVSG") throw new Error("bad packet");
  const size = new DataView(buf).getUint32(4, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + size)));
  const parts = {};
  let at = 8 + size;
  for (const part of header.parts) {
    parts[part.name] = { info: part, bytes: bytes.subarray(at, at + part.bytes) };
    at += part.bytes;
  }
  return { header, parts };
}

export async function onFrame(buf, send) {
  let header = null;
  try {
    const packet = parsePacket(buf);
    header = packet.header;
    const raw = await inflate(packet.parts.labels.bytes);
    const labels = packet.parts.labels.info.encoding === "u16"
      ? new Uint16Array(raw.buffer, raw.byteOffset, raw.byteLength / 2) : raw;
    let bitmap = null;
    if (packet.parts.overlay) {
      const blob = new Blob([packet.parts.overlay.bytes], { type: packet.parts.overlay.info.mime });
      bitmap = await createImageBitmap(blob);
    }
    requestAnimationFrame(() => {
      paint(header, labels, bitmap);
      send({ type: "ack", seq: header.seq });
    });
  } catch (err) {
    record.errors.push(String(err));
    text($("status"), `a frame could not be shown: ${err}`);
    if (header) send({ type: "ack", seq: header.seq });
  }
}

function resize(width, height) {
  // The whole frame in view: no taller than about two thirds of the window.
  $("stage").style.maxWidth = `${Math.floor(0.68 * window.innerHeight * width / height)}px`;
  for (const c of layers) {
    if (c.width !== width || c.height !== height) {
      c.width = width;
      c.height = height;
    }
  }
}

function paint(header, labels, bitmap) {
  if (header.camera !== view.camera) {
    if (bitmap) bitmap.close();
    return;
  }
  const { width, height } = header;
  const resized = live.width !== width || live.height !== height;
  resize(width, height);
  const ctx = live.getContext("2d");
  if (bitmap && view.mode === "overlay") {
    ctx.drawImage(bitmap, 0, 0);
    live.dataset.view = "overlay";
  } else {
    ctx.putImageData(colourise(labels, width, height), 0, 0);
    live.dataset.view = "labels";
  }
  if (bitmap) bitmap.close();
  view.frame = { header, labels, width, height, summary: header.summary };
  if (resized) { paintHeat(); clearLayer(marks); }  // the marked pixel was another frame's
  drawHighlight();
  drawBoxes();
  legend(header.summary);
  const now = performance.timeOrigin + performance.now();
  const stamp = header.stamp.sec * 1e3 + header.stamp.nanosec / 1e6;
  record.paints.push({ seq: header.seq, camera: header.camera, sec: header.stamp.sec,
    nanosec: header.stamp.nanosec, paint_ms: now,
    publish_ms: stamp + header.summary.latency_ms });
  if (record.paints.length > 5000) record.paints.splice(0, 1000);
  live.dataset.seq = String(header.seq);
  live.dataset.stamp = stampText(header.stamp);
  view.paintTimes.push(performance.now());
  status(header);
  refreshQuery();
}

function colourise(labels, width, height) {
  const image = new ImageData(width, height);
  const out = new Uint32Array(image.data.buffer);
  const table = view.table || new Uint32Array(256).fill(0xff808080);
  const grey = 0xff808080;
  for (let i = 0; i < out.length; i++) {
    const id = labels[i];
    out[i] = id < table.length ? table[id] : grey;
  }
  return image;
}

function status(header) {
  const now = performance.now();
  view.paintTimes = view.paintTimes.filter((t) => now - t < 2000);
  const fps = view.paintTimes.length > 1
    ? (view.paintTimes.length - 1) / ((now - view.paintTimes[0]) / 1000) : 0;
  const s = header.summary;
  const parts = [
    `${cameraName(header.camera)} · ${header.frame_id || "-"} · stamp ${live.dataset.stamp}`,
    `${fps.toFixed(1)} fps shown`,
    `latency ${s.latency_ms.toFixed(0)} ms in the node (inference ${s.inference_ms.toFixed(0)} ms)` +
      (view.deliveryMs !== null ? ` + ${view.deliveryMs.toFixed(0)} ms to this page` : ""),
    `${s.frames_dropped} frames dropped by the node`,
  ];
  if (s.keyframe) parts.push("keyframe");
  text($("status"), parts.join(" · "));
}

// ---- legend and highlight ------------------------------------------------------------------

export function legend(summary) {
  const list = $("legend");
  const rows = [];
  const stats = new Map(summary.classes.map((c) => [c.id, c]));
  const f = view.frame;
  if (f && !stats.has(0)) {  // the summary leaves id 0 out: its share, from the labels
    let zeros = 0;
    for (let i = 0; i < f.labels.length; i++) if (f.labels[i] === 0) zeros++;
    stats.set(0, { id: 0, fraction: zeros / Math.max(f.labels.length, 1), confidence: null });
  }
  const labels = view.vocab ? view.vocab.labels : summary.classes.map((c) => ({ id: c.id, name: c.name }));
  for (const l of labels) {
    const c = stats.get(l.id);
    const li = make("li", c && c.fraction > 0 ? "" : "absent");
    li.tabIndex = 0;
    li.dataset.id = String(l.id);
    const numbers = !c ? "–" : `${(100 * c.fraction).toFixed(1)}%` +
      (c.confidence === null ? "" : ` · ${c.confidence.toFixed(2)}`);
    li.append(swatch(l.id), make("span", "name", l.name), make("span", "numbers", numbers));
    li.setAttribute("aria-label", `${l.name}: ${numbers}`);
    const on = () => { view.hover = l.id; drawHighlight(); };
    const off = () => { if (view.hover === l.id) { view.hover = null; drawHighlight(); } };
    li.addEventListener("mouseenter", on);
    li.addEventListener("focus", on);
    li.addEventListener("mouseleave", off);
    li.addEventListener("blur", off);
    rows.push(li);
  }
  list.replaceChildren(...rows);
}

export function drawHighlight() {
  const f = view.frame;
  if (view.hover === null || !f) { clearLayer(dim); dim.dataset.id = ""; return; }
  const image = new ImageData(f.width, f.height);
  const out = new Uint32Array(image.data.buffer);
  const shade = 0xb4000000 >>> 0;  // black at alpha 180 over the other classes
  for (let i = 0; i < out.length; i++) out[i] = f.labels[i] === view.hover ? 0 : shade;
  dim.getContext("2d").putImageData(image, 0, 0);
  dim.dataset.id = String(view.hover);
}
