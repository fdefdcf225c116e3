// DOM building and formatting for the Web UI.
//
// Every value shown goes through h()/s(): strings become Text nodes (never HTML), and attribute
// values are set with setAttribute, so job names, tracebacks and log lines cannot inject markup.
// Pages are built as fresh nodes and merged into the shown ones with patchChildren(), which
// changes only what differs (no flicker; scroll positions, hover and focus kept).

const SVG_NS = "http://www.w3.org/2000/svg";

function build(el, attrs, children) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** An HTML element: h("a", {href: "#/"}, "text", otherNode, [more, nodes]). */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** An SVG element, like h(). */
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

/**
 * Make the children of `parent` look like `nodes`, changing only what differs: an element of the
 * same tag is kept (its attributes and children patched in place), a text node gets its new text.
 * So a refresh never flickers, and the button under the mouse, a scrolled log and a hovered
 * vertex stay the same nodes.
 */
export function patchChildren(parent, nodes) {
  const old = Array.from(parent.childNodes);
  nodes.forEach((node, i) => {
    const current = old[i];
    if (current === undefined) parent.appendChild(node);
    else patchNode(current, node);
  });
  for (const extra of old.slice(nodes.length)) extra.remove();
}

function patchNode(current, node) {
  if (current.nodeType !== node.nodeType || current.nodeName !== node.nodeName
      || current.namespaceURI !== node.namespaceURI) {
    current.replaceWith(node);
  } else if (current.nodeType !== Node.ELEMENT_NODE) {
    if (current.nodeValue !== node.nodeValue) current.nodeValue = node.nodeValue;
  } else if (!current.isEqualNode(node)) {
    for (const {name} of Array.from(current.attributes)) {
      if (!node.hasAttribute(name)) current.removeAttribute(name);
    }
    for (const {name, value} of Array.from(node.attributes)) {
      if (current.getAttribute(name) !== value) current.setAttribute(name, value);
    }
    patchChildren(current, Array.from(node.childNodes));
  }
}

// ---- formatting ---------------------------------------------------------------------------------

export const TERMINAL_JOB_STATES = new Set(["FINISHED", "CANCELED", "FAILED"]);

/** A state as a coloured badge (FAILED, RUNNING, ...). */
export function badge(state) {
  const text = state || "UNKNOWN";
  return h("span", {class: `badge state-${text.toLowerCase()}`}, text);
}

function pad(n) {
  return String(n).padStart(2, "0");
}

/** Milliseconds since the epoch as local "YYYY-MM-DD HH:MM:SS"; "–" for -1/0/absent. */
export function time(ms) {
  if (typeof ms !== "number" || ms <= 0) return "–";
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} `
    + `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** A duration in milliseconds as "1h 2m 3s" (or "350ms"); "–" when unknown. */
export function duration(ms) {
  if (typeof ms !== "number" || ms < 0) return "–";
  if (ms < 1000) return `${Math.round(ms)}ms`;
  let rest = Math.floor(ms / 1000);
  const parts = [];
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60]]) {
    if (rest >= size || parts.length) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  parts.push(`${rest}s`);
  return parts.slice(0, 3).join(" ");
}

/** A byte count as "1.5 MB"; "–" when unknown. */
export function bytes(n) {
  if (typeof n !== "number" || n < 0) return "–";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** A count with thousands separators; "–" when unknown. */
export function count(n) {
  if (typeof n !== "number" || n < 0) return "–";
  return n.toLocaleString("en-US");
}

/** A ratio 0..1 as a percentage. */
export function percent(ratio) {
  if (typeof ratio !== "number") return "–";
  return `${Math.round(ratio * 100)}%`;
}

/** `text` cut to `max` characters with an ellipsis. */
export function clip(text, max) {
  const str = String(text ?? "");
  return str.length > max ? `${str.slice(0, max - 1)}…` : str;
}

/** A table with a header row; rows are arrays of cells (strings or nodes). */
export function table(headers, rows, attrs = {}) {
  return h("table", attrs,
    h("thead", {}, h("tr", {}, headers.map((title) => h("th", {}, title)))),
    h("tbody", {}, rows.length
      ? rows.map((cells) => h("tr", {}, cells.map((cell) => h("td", {}, cell))))
      : h("tr", {}, h("td", {colspan: headers.length, class: "empty"}, "None"))));
}

/** A section with a title. */
export function section(title, ...children) {
  return h("section", {class: "card"}, title ? h("h2", {}, title) : null, ...children);
}

/** A muted line saying that something is not available; the server's reason is its tooltip. */
export function unavailable(what, reason) {
  return h("p", {class: "unavailable", title: reason || null}, `${what} not available.`);
}

/** Key/value pairs as a definition list. */
export function facts(pairs) {
  return h("dl", {class: "facts"}, pairs.map(([key, value]) => [h("dt", {}, key), h("dd", {}, value)]));
}

/** A row of tabs; `active` is the key of the current one. */
export function tabs(entries, active) {
  return h("nav", {class: "tabs"}, entries.map(([key, title, href]) =>
    h("a", {href, class: key === active ? "tab active" : "tab", "data-tab": key}, title)));
}
