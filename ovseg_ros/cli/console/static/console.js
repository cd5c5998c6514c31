// ovseg console page: the live view of one camera of a running node, its legend, the
// vocabulary editor, a pixel's classes and phrase queries. Plain JavaScript, no build step, no
// third-party code; every request goes to the console that served this page.
//
// The live view is a stack of canvases, bottom first: the frame (the node's overlay, or its
// labels in the node's colours), the legend's highlight (other classes dimmed), the phrase
// query's heatmap, and the pixel marker. A new kind of result is one more layer.
//
// Names from the node are shown with textContent only: a name is never read as HTML.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const live = $("live"), dim = $("dim"), heat = $("heat"), marks = $("marks");
  const layers = [live, dim, heat, marks];
  const view = {
    ws: null, retry: 1000, node: "", cameras: [], camera: null, mode: "overlay",
    vocab: null, colours: new Map(), table: null,
    frame: null, hover: null, paintTimes: [], deliveryMs: null,
    query: { phrase: "", inFlight: false, pending: null, live: false, lastAt: 0, answer: null },
    pixel: { inFlight: false, pending: null, at: null },
  };
  // Paint records, read by tests and the benchmark: publish time (stamp + the node's latency)
  // and paint time, both in ms since the epoch.
  const record = { paints: [], errors: [] };
  window.ovsegConsole = record;

  // ---- small helpers -------------------------------------------------------------------------

  function text(el, value) { el.textContent = value; return el; }

  function make(tag, className, content) {
    const el = document.createElement(tag);
    if (className) el.className = className;
    if (content !== undefined) el.textContent = content;
    return el;
  }

  function swatch(id) {
    const el = make("span", "swatch");
    const rgb = view.colours.get(id) || [128, 128, 128];
    el.style.background = `rgb(${rgb[0]}, ${rgb[1]}, ${rgb[2]})`;
    return el;
  }

  function setResult(el, message, kind) {
    el.replaceChildren();
    el.textContent = message;
    el.classList.toggle("bad", kind === "bad");
    el.classList.toggle("good", kind === "good");
  }

  function cameraName(camera) { return camera === "" ? "(default camera)" : camera; }

  async function inflate(bytes) {
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }

  function base64Bytes(text64) {
    const bin = atob(text64);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  async function api(method, path, body) {
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

  // ---- connection ----------------------------------------------------------------------------

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(scheme + location.host + "/ws");
    ws.binaryType = "arraybuffer";
    view.ws = ws;
    ws.onopen = () => { view.retry = 1000; };
    ws.onmessage = (ev) => {
      if (typeof ev.data === "string") onEvent(JSON.parse(ev.data));
      else onFrame(ev.data);
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

  // ---- frames --------------------------------------------------------------------------------

  function parsePacket(buf) {
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

  async function onFrame(buf) {
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
    } else {
      ctx.putImageData(colourise(labels, width, height), 0, 0);
    }
    if (bitmap) bitmap.close();
    view.frame = { header, labels, width, height, summary: header.summary };
    if (resized) { paintHeat(); clearLayer(marks); }  // the marked pixel was another frame's
    drawHighlight();
    legend(header.summary);
    const now = performance.timeOrigin + performance.now();
    const stamp = header.stamp.sec * 1e3 + header.stamp.nanosec / 1e6;
    record.paints.push({ seq: header.seq, camera: header.camera, sec: header.stamp.sec,
      nanosec: header.stamp.nanosec, paint_ms: now,
      publish_ms: stamp + header.summary.latency_ms });
    if (record.paints.length > 5000) record.paints.splice(0, 1000);
    live.dataset.seq = String(header.seq);
    live.dataset.stamp = `${header.stamp.sec}.${String(header.stamp.nanosec).padStart(9, "0")}`;
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

  function legend(summary) {
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

  function clearLayer(canvas) {
    canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
  }

  function drawHighlight() {
    const f = view.frame;
    if (view.hover === null || !f) { clearLayer(dim); dim.dataset.id = ""; return; }
    const image = new ImageData(f.width, f.height);
    const out = new Uint32Array(image.data.buffer);
    const shade = 0xb4000000 >>> 0;  // black at alpha 180 over the other classes
    for (let i = 0; i < out.length; i++) out[i] = f.labels[i] === view.hover ? 0 : shade;
    dim.getContext("2d").putImageData(image, 0, 0);
    dim.dataset.id = String(view.hover);
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
      const stamp = `${res.stamp.sec}.${String(res.stamp.nanosec).padStart(9, "0")}`;
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

  // ---- phrase queries ------------------------------------------------------------------------

  let typing = null;

  function onQueryInput() {
    clearTimeout(typing);
    typing = setTimeout(() => startQuery($("query").value.trim()), 250);
  }

  function startQuery(phrase) {
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

  function refreshQuery() {
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

  function paintHeat() {
    clearLayer(heat);
    const kept = view.query.answer;  // another frame size: another picture, not shown on it
    if (kept && kept.width === heat.width && kept.height === heat.height) {
      heat.getContext("2d").drawImage(kept, 0, 0);
    }
  }

  function clearQuery(clearText) {
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

  // ---- wiring --------------------------------------------------------------------------------

  $("camera").addEventListener("change", (ev) => {
    view.camera = ev.target.value;
    view.frame = null;
    clearQuery(false);
    clearLayer(marks);
    watch();
  });
  $("view").addEventListener("change", (ev) => { view.mode = ev.target.value; watch(); });
  $("vocab-form").addEventListener("submit", apply);
  $("vocab").addEventListener("input", () => { $("vocab").dataset.edited = "1"; });
  $("reset").addEventListener("click", () => {
    delete $("vocab").dataset.edited;
    if (view.vocab) $("vocab").value = namesOf(view.vocab).join(", ");
    setResult($("vocab-result"), "");
  });
  $("query").addEventListener("input", onQueryInput);
  $("query-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    clearTimeout(typing);
    startQuery($("query").value.trim());
  });
  $("clear-query").addEventListener("click", () => clearQuery(true));
  live.addEventListener("click", (ev) => {
    if (!view.frame) return;
    const [u, v] = pixelAt(ev);
    askPixel(u, v);
  });
  $("view").value = view.mode;
  connect();
})();
