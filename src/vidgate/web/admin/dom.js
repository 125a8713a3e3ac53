// Small DOM helpers: build elements without innerHTML (the CSP forbids inline styles
// and scripts, and server data is always set as text), format money and times.

/**
 * h("tag.class1.class2", {attr: value, on: {click}}, ...children)
 * Attributes starting with "data-" or "aria-" and the usual ones are set as attributes;
 * children are nodes or strings (set as text). null/false children are skipped.
 */
export function h(spec, attrs = {}, ...children) {
  const [tag, ...classes] = spec.split(".");
  const el = document.createElement(tag || "div");
  if (classes.length) el.className = classes.join(" ");
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "on") {
      for (const [event, handler] of Object.entries(value)) el.addEventListener(event, handler);
    } else if (name === "text") {
      el.textContent = String(value);
    } else if (name === "value") {
      el.value = String(value);
    } else if (name === "checked" || name === "disabled" || name === "selected" || name === "hidden") {
      el[name] = Boolean(value);
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** "$1.25" from "1.25" or "$1.25"; "−$1.25" from "-1.25" or "-$1.25"; a dash for nothing. */
export function usd(value) {
  if (value === null || value === undefined || value === "") return "—";
  const text = String(value);
  const negative = text.startsWith("-");
  const digits = text.replace(/^-/, "").replace(/^\$/, "");
  return `${negative ? "−" : ""}$${digits}`;
}

export function usdMicros(micros) {
  if (micros === null || micros === undefined) return "—";
  const sign = micros < 0 ? "−" : "";
  return `${sign}$${(Math.abs(micros) / 1e6).toFixed(2)}`;
}

const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

export function when(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : timeFormat.format(date);
}

export function timeEl(iso) {
  return iso ? h("time", { datetime: iso, title: iso, text: when(iso) }) : "—";
}

export function percent(rate) {
  return rate === null || rate === undefined ? "—" : `${(rate * 100).toFixed(1)}%`;
}

const STATUS_CLASS = {
  succeeded: "ok", accepted: "ok", closed: "ok", true: "ok",
  failed: "bad", expired: "bad", refused: "bad", open: "bad", canceled: "wait",
  queued: "wait", submitting: "run", running: "run", fetching: "run", pending: "wait",
  unknown: "wait", half_open: "wait", degraded: "wait",
};

export function badge(word, testid) {
  const text = String(word ?? "—");
  return h(`span.status.status-${STATUS_CLASS[text] || "plain"}`, { text, "data-testid": testid });
}

/**
 * A table card: columns [{label, num}] and rows of cells (nodes or text).
 * An empty list shows `empty`.
 */
export function table({ columns, rows, testid, empty = "Nothing yet.", rowTestid, caption }) {
  const head = h("thead", {}, h("tr", {}, columns.map((c) => h(c.num ? "th.num" : "th", { scope: "col", text: c.label }))));
  const body = h("tbody", {},
    rows.map((row) => h("tr", { "data-testid": rowTestid },
      row.map((cell, i) => h(columns[i] && columns[i].num ? "td.num" : "td", { "data-label": columns[i]?.label }, cell)))));
  const tableEl = h("table.table", { "data-testid": testid }, caption ? h("caption.visually-hidden", { text: caption }) : null, head, body);
  return h("div.card.table-card", {}, h("div.table-scroll", {}, tableEl), rows.length ? null : h("p.empty.small.muted", { text: empty }));
}

/** A label-value list. */
export function details(pairs, testid) {
  return h("dl.details", { "data-testid": testid },
    pairs.filter(Boolean).map(([label, value]) => [h("dt", { text: label }), h("dd", {}, value ?? "—")]));
}

export function field(label, control, help) {
  return h("label.field", {}, h("span.label", { text: label }), control, help ? h("span.help", { text: help }) : null);
}

export function option(value, label, selected = false) {
  return h("option", { value, text: label ?? value, selected });
}

export function viewHead(title, ...actions) {
  return h("div.view-head", {}, h("h1", { text: title }), actions.length ? h("div.actions", {}, actions) : null);
}

/** Shows an error or notice in a form's own alert line (role=alert). */
export function formError(testid) {
  const el = h("p.field-error", { role: "alert", "data-testid": testid, hidden: true });
  return {
    el,
    show(message) {
      el.textContent = message;
      el.hidden = false;
    },
    hide() {
      el.hidden = true;
      el.textContent = "";
    },
  };
}

/** Run a form action: disables the submit button while it runs, shows a failure in `error`. */
export async function busy(button, error, work) {
  button.disabled = true;
  error?.hide();
  try {
    return await work();
  } catch (failure) {
    if (error) error.show(failure.message || String(failure));
    else throw failure;
    return undefined;
  } finally {
    button.disabled = false;
  }
}

export function announce(message) {
  const el = document.querySelector("[data-role=announce]");
  if (el) el.textContent = message;
}
