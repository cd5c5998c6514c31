// Phrase queries (~/query through the console): the answer's relevance as a heatmap layer
// over the live view, its best pixel boxed. After a pause in the typing; then it follows new
// frames at most once a second until the node refuses or says busy (shown, never retried).
import {
  $, api, base64Bytes, clearLayer, heat, inflate, make, record, setResult, view,
} from "./common.js";

let typing = null;

export function onQueryInput() {
  clearTimeout(typing);
  typing = setTimeout(() => startQuery($("query").value.trim()), 250);
}

export function queryNow() {
  clearTimeout(typing);
  startQuery($("query").value.trim());
}

export function startQuery(phrase) {
  if (!phrase) { clearQuery(true); return; }
  view.query.phrase = phrase;
  view.query.live = true;  // answers follow new frames until the node says busy
  runQuery(phrase);
}

async function runQuery(phrase) {
  const q = view.query;
  if (q.inFlight) { q.pending = phrase; return; }
  q.inFlight = true;
  q.lastAt = performance.now();
  const res = await api("POST", "/api/query", { phrase, camera: view.camera, threshold: 0 });
  q.inFlight = false;
  if (phrase === q.phrase) showAnswer(res);
  const next = q.pending;
  q.pending = null;
  if (next && next === q.phrase) runQuery(next);
}

export function refreshQuery() {
  const q = view.query;
  if (q.live && q.phrase && !q.inFlight && performance.now() - q.lastAt > 1000) {
    runQuery(q.phrase);
  }
}

function showAnswer(res) {
  const out = $("query-result");
  if (!res.ok) {
    view.query.live = false;  // refused or busy: shown, not asked again until the next edit
    setResult(out, res.message || "refused", "bad");
    return;
  }
  if (res.camera !== view.camera && !(res.camera === "" && view.cameras.length <= 1)) return;
  const heatBytes = base64Bytes(res.relevance);
  inflate(heatBytes).then((values) => drawHeat(values, res)).catch((err) => {
    record.errors.push(String(err));
    setResult(out, `the heatmap could not be shown: ${err}`, "bad");
  });
}

function drawHeat(values, res) {
  const image = new ImageData(res.width, res.height);
  const px = image.data;
  for (let i = 0; i < values.length; i++) {
    const r = values[i] / 255;
    // Blue -> yellow -> red as relevance rises; transparent where it is low.
    px[4 * i] = Math.round(255 * Math.min(1, 2 * r));
    px[4 * i + 1] = Math.round(255 * Math.min(1, 2 - 2 * r) * Math.min(1, 2 * r + 0.2));
    px[4 * i + 2] = Math.round(255 * Math.max(0, 1 - 2 * r));
    px[4 * i + 3] = Math.round(220 * Math.sqrt(r));
  }
  // Kept: frames of the answer's size show it until the next answer (paintHeat).
  const kept = document.createElement("canvas");
  kept.width = res.width;
  kept.height = res.height;
  const ctx = kept.getContext("2d");
  ctx.putImageData(image, 0, 0);
  ctx.strokeStyle = "#fff";
  ctx.lineWidth = Math.max(1, res.width / 320);
  const r = Math.max(5, Math.round(res.width / 60));
  ctx.strokeRect(res.u - r, res.v - r, 2 * r, 2 * r);
  view.query.answer = kept;
  paintHeat();
  const out = $("query-result");
  out.classList.remove("bad", "good");
  const where = res.in_vocabulary ? `in the vocabulary (id ${res.class_id})`
    : "not in the vocabulary";
  const line = make("p");
  line.append(make("strong", "", res.phrase),
    ` · ${where} · best ${res.score.toFixed(3)} at (${res.u}, ${res.v})`);
  out.replaceChildren(line);
  out.dataset.phrase = res.phrase;
  out.dataset.score = String(res.score);
  heat.dataset.phrase = res.phrase;
}

export function paintHeat() {
  clearLayer(heat);
  const kept = view.query.answer;  // another frame size: another picture, not shown on it
  if (kept && kept.width === heat.width && kept.height === heat.height) {
    heat.getContext("2d").drawImage(kept, 0, 0);
  }
}

export function clearQuery(clearText) {
  view.query.answer = null;
  view.query.phrase = "";
  view.query.live = false;
  view.query.pending = null;
  clearLayer(heat);
  heat.dataset.phrase = "";
  const out = $("query-result");
  setResult(out, "");
  delete out.dataset.phrase;
  if (clearText) $("query").value = "";
}
