// The job graph as SVG: one box per job vertex (an operator chain), edges with their ship
// strategy, laid out in layers from left (sources) to right (sinks).

import {bytes, clip, count, s} from "./dom.js";

const WIDTH = 260;
const GAP_X = 150;
const GAP_Y = 28;
const PAD = 16;
const LINE = 17;
const MAX_OPERATOR_LINES = 5;
const CHARS_PER_LINE = 38;

/**
 * Layers and positions of `nodes` (the plan's nodes: {id, inputs: [{id}]}), pure.
 * A node's layer is the length of the longest path from a source to it; inside a layer nodes are
 * ordered by the mean position of their inputs (barycenter), which keeps edges from crossing in
 * the common shapes (pipelines, fan-out, joins).
 */
export function layout(nodes, heightOf) {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const layerOf = new Map();
  const visiting = new Set();
  const layer = (node) => {
    if (layerOf.has(node.id)) return layerOf.get(node.id);
    if (visiting.has(node.id)) return 0; // a cycle (iterations): break it here
    visiting.add(node.id);
    const inputs = (node.inputs || []).map((i) => byId.get(i.id)).filter(Boolean);
    const value = inputs.length ? 1 + Math.max(...inputs.map(layer)) : 0;
    visiting.delete(node.id);
    layerOf.set(node.id, value);
    return value;
  };
  nodes.forEach(layer);

  const layers = [];
  for (const node of nodes) (layers[layerOf.get(node.id)] ||= []).push(node);
  const rank = new Map();
  layers.forEach((members, index) => {
    if (index > 0) {
      const center = (node) => {
        const ranks = (node.inputs || []).map((i) => rank.get(i.id)).filter((r) => r !== undefined);
        return ranks.length ? ranks.reduce((a, b) => a + b, 0) / ranks.length : 0;
      };
      members.sort((a, b) => center(a) - center(b));
    }
    members.forEach((node, i) => rank.set(node.id, i));
  });

  const heights = layers.map((members) =>
    members.reduce((sum, n) => sum + heightOf(n), 0) + GAP_Y * (members.length - 1));
  const total = Math.max(0, ...heights);
  const boxes = new Map();
  layers.forEach((members, index) => {
    let y = PAD + (total - heights[index]) / 2;
    for (const node of members) {
      const height = heightOf(node);
      boxes.set(node.id, {x: PAD + index * (WIDTH + GAP_X), y, width: WIDTH, height});
      y += height + GAP_Y;
    }
  });
  return {boxes, width: 2 * PAD + layers.length * WIDTH + Math.max(0, layers.length - 1) * GAP_X,
    height: 2 * PAD + total};
}

function operatorLines(node) {
  const names = node.operators && node.operators.length ? node.operators : [node.description || node.id];
  if (names.length <= MAX_OPERATOR_LINES) return names;
  return [...names.slice(0, MAX_OPERATOR_LINES - 1), `+ ${names.length - MAX_OPERATOR_LINES + 1} more`];
}

function nodeHeight(node) {
  return 12 + operatorLines(node).length * LINE + 8 + 4 * LINE + 8;
}

const LEVEL_CLASS = {ok: "bp-ok", low: "bp-low", high: "bp-high"};

/**
 * The SVG of a job: `plan` is /jobs/:jid/plan's plan, `vertices` maps a vertex id to its entry of
 * /jobs/:jid's vertices, `backpressure` maps a vertex id to its backpressure level (or null when
 * not available), `href(vertexId)` is the link of a vertex, `selected` the highlighted one.
 */
export function jobGraph({plan, vertices, backpressure, href, selected}) {
  const nodes = plan.nodes || [];
  const {boxes, width, height} = layout(nodes, nodeHeight);
  const svg = s("svg", {class: "job-graph", width, height, viewBox: `0 0 ${width} ${height}`,
    role: "img", "aria-label": `Job graph of ${plan.name || plan.jid || "the job"}`});
  svg.appendChild(s("defs", {},
    s("marker", {id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7,
      orient: "auto-start-reverse"}, s("path", {d: "M 0 0 L 10 5 L 0 10 z", class: "arrow"}))));

  for (const node of nodes) {
    const to = boxes.get(node.id);
    for (const input of node.inputs || []) {
      const from = boxes.get(input.id);
      if (!from || !to) continue;
      const x1 = from.x + from.width;
      const y1 = from.y + from.height / 2;
      const x2 = to.x;
      const y2 = to.y + to.height / 2;
      const bend = Math.max(30, (x2 - x1) / 2);
      const strategy = input.ship_strategy || "";
      const mx = (x1 + x2) / 2;
      const my = (y1 + y2) / 2;
      const labelWidth = strategy.length * 7.5 + 14;
      svg.appendChild(s("g", {class: "edge", "data-from": input.id, "data-to": node.id},
        s("path", {d: `M ${x1} ${y1} C ${x1 + bend} ${y1}, ${x2 - bend} ${y2}, ${x2} ${y2}`,
          "marker-end": "url(#arrow)"}),
        strategy ? s("rect", {x: mx - labelWidth / 2, y: my - 9, width: labelWidth, height: 18, rx: 4}) : null,
        strategy ? s("text", {x: mx, y: my + 4, "text-anchor": "middle"}, strategy) : null));
    }
  }

  for (const node of nodes) {
    const box = boxes.get(node.id);
    const vertex = vertices.get(node.id) || {};
    const metrics = vertex.metrics || {};
    const level = backpressure.get(node.id);
    const status = (vertex.status || "CREATED").toLowerCase();
    const lines = operatorLines(node);
    let y = box.y + 12 + LINE - 4;
    // the chain's operators, one a line; an arrow marks each one chained to the one above
    const texts = lines.map((name, i) => [
      i > 0 ? s("text", {x: box.x + 14, y: y + i * LINE, class: "chained"}, "↳") : null,
      s("text", {x: box.x + (i > 0 ? 28 : 14), y: y + i * LINE, class: "operator"}, clip(name, CHARS_PER_LINE)),
    ]);
    y += lines.length * LINE + 8;
    const stat = (i, label, value, cls) => [
      s("text", {x: box.x + 14, y: y + i * LINE, class: "label"}, label),
      s("text", {x: box.x + box.width - 12, y: y + i * LINE, class: `value ${cls || ""}`.trim(),
        "text-anchor": "end"}, value)];
    const group = s("a", {href: href(node.id), class: "vertex-link"},
      s("g", {class: `vertex status-${status}${node.id === selected ? " selected" : ""}`,
        "data-vertex-id": node.id},
      s("title", {}, `${node.description || node.id}\nid ${node.id}`),
      s("rect", {x: box.x, y: box.y, width: box.width, height: box.height, rx: 6, class: "box"}),
      s("rect", {x: box.x, y: box.y, width: 6, height: box.height, rx: 3, class: "stripe"}),
      texts,
      s("line", {x1: box.x + 12, x2: box.x + box.width - 10, y1: y - LINE + 4, y2: y - LINE + 4, class: "rule"}),
      stat(0, "Parallelism", `${node.parallelism ?? vertex.parallelism ?? "?"} · ${vertex.status || "–"}`),
      stat(1, "Records in / out", `${count(metrics["read-records"])} / ${count(metrics["write-records"])}`),
      stat(2, "Bytes in / out", `${bytes(metrics["read-bytes"])} / ${bytes(metrics["write-bytes"])}`),
      stat(3, "Backpressure", level ? level.toUpperCase() : "not available",
        level ? LEVEL_CLASS[level] || "" : "muted")));
    svg.appendChild(group);
  }
  return svg;
}
