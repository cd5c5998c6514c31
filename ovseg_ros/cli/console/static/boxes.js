// The objects' boxes (the node's ~/detections, with objects on): one box per detection of the
// shown frame over the live view, in its class's colour, labelled "name #track". The console
// sends a frame's own detections with it, so boxes never belong to another frame. Names are
// drawn as canvas text and listed with textContent: never read as HTML.
import { $, boxes, make, stampText, swatch, view } from "./common.js";

const NOTES = {
  unavailable: "No boxes: the node publishes no ~/detections (start it with objects:=true).",
  late: "No boxes for this frame: its detections did not reach the console in time.",
};

export function boxLabel(box) {
  return box.track ? `${box.name} #${box.track}` : box.name;
}

// The layer at a multiple of the frame's size, so the labels stay sharp on a view larger
// than the frame (the other layers are at the frame's own size).
function fit(f) {
  const shownWidth = boxes.clientWidth || f.width;
  const k = Math.max(1, Math.min(4, Math.ceil((window.devicePixelRatio || 1) * shownWidth / f.width)));
  if (boxes.width !== f.width * k || boxes.height !== f.height * k) {
    boxes.width = f.width * k;
    boxes.height = f.height * k;
  }
  return k;
}

export function drawBoxes() {
  const f = view.frame;
  const all = f && f.header.boxes ? f.header.boxes : [];
  const shown = view.showBoxes ? all : [];
  const k = f ? fit(f) : 1;
  const ctx = boxes.getContext("2d");
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, boxes.width, boxes.height);
  ctx.setTransform(k, 0, 0, k, 0, 0);
  for (const box of shown) drawBox(ctx, box, f.width);
  if (shown.length) drawLabels(ctx, shown, f.width, f.height);
  boxes.dataset.count = String(shown.length);
  boxes.dataset.stamp = f ? stampText(f.header.stamp) : "";
  boxes.dataset.detections = f ? f.header.detections : "";
  listBoxes(shown);
  note(f, all.length);
}

function colourOf(box) {
  return view.colours.get(box.label) || [128, 128, 128];
}

function drawBox(ctx, box, width) {
  const rgb = colourOf(box);
  const line = Math.max(1, width / 320);
  // Inside the object's pixels, dark under the colour: visible on its own class's colour too.
  const x = box.x + line / 2, y = box.y + line / 2;
  const w = Math.max(box.w - line, 0), h = Math.max(box.h - line, 0);
  ctx.lineWidth = line * 2.5;
  ctx.strokeStyle = "rgba(0, 0, 0, 0.7)";
  ctx.strokeRect(x, y, w, h);
  ctx.lineWidth = line;
  ctx.strokeStyle = `rgb(${rgb[0]}, ${rgb[1]}, ${rgb[2]})`;
  ctx.strokeRect(x, y, w, h);
}

// Labels after all boxes, each above its box (or inside its top edge at the image's top),
// moved down past the labels already placed that it would cover.
function drawLabels(ctx, shown, width, height) {
  const size = Math.max(9, Math.round(width / 45));
  const pad = Math.max(1, Math.round(size / 5));
  ctx.font = `${size}px system-ui, sans-serif`;
  ctx.textBaseline = "top";
  const placed = [];
  for (const box of shown) {
    const label = boxLabel(box);
    const tw = ctx.measureText(label).width + 2 * pad, th = size + 2 * pad;
    const tx = Math.max(0, Math.min(box.x, width - tw));
    let ty = box.y - th >= 0 ? box.y - th : box.y;
    const hits = (p) => tx < p.x + p.w && p.x < tx + tw && ty < p.y + p.h && p.y < ty + th;
    for (let tries = 0; tries < 8 && placed.some(hits); tries++) {  // crowded: may overlap
      ty = Math.max(...placed.filter(hits).map((p) => p.y + p.h));
    }
    ty = Math.min(ty, height - th);
    placed.push({ x: tx, y: ty, w: tw, h: th });
    const rgb = colourOf(box);
    ctx.fillStyle = `rgb(${rgb[0]}, ${rgb[1]}, ${rgb[2]})`;
    ctx.fillRect(tx, ty, tw, th);
    const light = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] > 140;
    ctx.fillStyle = light ? "#000" : "#fff";
    ctx.fillText(label, tx + pad, ty + pad);
  }
}

function listBoxes(shown) {
  const rows = shown.map((box) => {
    const li = make("li");
    li.dataset.box = `${box.x} ${box.y} ${box.w} ${box.h}`;  // x y width height, in pixels
    li.append(swatch(box.label), make("span", "box-name", boxLabel(box)),
      make("span", "numbers", box.score.toFixed(2)));
    return li;
  });
  $("box-labels").replaceChildren(...rows);
}

function note(f, count) {
  let message = "No boxes yet.";
  if (f && NOTES[f.header.detections]) {
    message = NOTES[f.header.detections];
  } else if (f) {
    message = `${count} ${count === 1 ? "object" : "objects"} in this frame` +
      (view.showBoxes ? "" : " (boxes hidden)");
  }
  $("boxes-status").textContent = message;
}
