// Small helpers shared by the playground's modules: building DOM safely and
// formatting money, time and ids. No framework: everything user-supplied goes
// through textContent or attributes, never innerHTML.

/** Build an element: h("a", {href: "#/", class: "x"}, "text", child). */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
    else if (value === true) node.setAttribute(name, "");
    else node.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** The first element matching a selector, or an error that names it. */
export function $(selector, root = document) {
  const found = root.querySelector(selector);
  if (!found) throw new Error(`playground: missing element ${selector}`);
  return found;
}

export const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

/** Put a money string ("0.378", "-25.00") in the user's eyes: "$0.378", "−$25.00". */
export function money(value, { signed = false } = {}) {
  if (value === null || value === undefined || value === "") return "—";
  let text = String(value).trim();
  let negative = false;
  if (text.startsWith("-")) {
    negative = true;
    text = text.slice(1);
  } else if (text.startsWith("+")) {
    text = text.slice(1);
  }
  let [whole, fraction = ""] = text.split(".");
  if (fraction.length < 2) fraction = fraction.padEnd(2, "0");
  whole = (whole || "0").replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const isZero = /^[0,]*$/.test(whole) && /^0*$/.test(fraction);
  const sign = negative && !isZero ? "\u2212" : signed && !isZero ? "+" : "";
  return `${sign}$${whole}.${fraction}`;
}

/** Whether a money string is above zero. */
export function positive(value) {
  return value !== null && value !== undefined && Number.parseFloat(value) > 0;
}

const dateFormat = new Intl.DateTimeFormat(undefined, {
  month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit",
});

/** A unix timestamp (seconds) or an ISO string, as a short local date and time. */
export function when(value) {
  if (value === null || value === undefined) return "—";
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : dateFormat.format(date);
}

export function isoTitle(value) {
  if (value === null || value === undefined) return "";
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  return Number.isNaN(date.getTime()) ? "" : date.toISOString();
}

/** "video_b7110912059d4a5492e0fe54ecb695e3" -> "video_b711…b695e3" for tight columns. */
export function shortId(id) {
  if (!id) return "";
  const [prefix, rest] = id.includes("_") ? [id.slice(0, id.indexOf("_") + 1), id.slice(id.indexOf("_") + 1)] : ["", id];
  return rest.length > 12 ? `${prefix}${rest.slice(0, 4)}…${rest.slice(-6)}` : id;
}

export function plural(count, word) {
  return `${count.toLocaleString()} ${word}${count === 1 ? "" : "s"}`;
}

/** Run fn at most once per wait ms, after the last call. */
export function debounce(fn, wait) {
  let timer = 0;
  const wrapped = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), wait);
  };
  wrapped.cancel = () => clearTimeout(timer);
  return wrapped;
}

/** A File as a data: URL. */
export function readAsDataURL(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result));
    reader.onerror = () => reject(reader.error || new Error("could not read the file"));
    reader.readAsDataURL(file);
  });
}

export function formatBytes(bytes) {
  if (!Number.isFinite(bytes)) return "";
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
