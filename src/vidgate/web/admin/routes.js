// Routes: per model, which upstream routes are on, in what order, with what weights
// and policy. Saving takes effect on the next job, without a restart.

import { admin } from "./api.js";
import { badge, busy, field, formError, h, option, viewHead, announce } from "./dom.js";

const POLICIES = [
  ["ordered", "Ordered: first enabled route, then the next on failure"],
  ["weighted", "Weighted: spread by weight"],
  ["cheapest", "Cheapest first"],
];

function routeRow(route, { moveUp, moveDown }) {
  const enabled = h("input", { type: "checkbox", checked: route.enabled, "data-testid": "route-enabled",
    "aria-label": `Route ${route.provider} ${route.model} enabled` });
  const weight = h("input.input-small", { type: "number", min: 0, step: 1, value: route.weight ?? 1, "data-testid": "route-weight",
    "aria-label": `Weight of ${route.provider} ${route.model}` });
  const up = h("button.btn.btn-quiet.btn-small", { type: "button", text: "↑", "aria-label": "Move up", "data-testid": "route-up" });
  const down = h("button.btn.btn-quiet.btn-small", { type: "button", text: "↓", "aria-label": "Move down", "data-testid": "route-down" });
  const row = h("li.route-row", { "data-testid": "route-row", "data-provider": route.provider, "data-upstream-model": route.model },
    h("label.switch-inline", {}, enabled, h("span", {}, h("strong", { text: route.provider }), " ", h("code.small", { text: route.model }))),
    h("span.route-meta.small.muted", {}, route.configured === false ? badge("not configured") : null, route.cost ? ` ${route.cost}` : ""),
    h("span.route-controls", {}, h("span.small.muted", { text: "weight " }), weight, up, down));
  up.addEventListener("click", () => moveUp(row));
  down.addEventListener("click", () => moveDown(row));
  row.read = () => ({ provider: route.provider, model: route.model, enabled: enabled.checked, weight: Number(weight.value || 0) });
  return row;
}

function modelCard(entry, refresh) {
  const error = formError("route-error");
  const list = h("ol.route-list", {});
  const move = (row, delta) => {
    const rows = [...list.children];
    const at = rows.indexOf(row) + delta;
    if (at < 0 || at >= rows.length) return;
    if (delta < 0) list.insertBefore(row, rows[at]);
    else list.insertBefore(rows[at], row);
  };
  for (const route of entry.routes) list.append(routeRow(route, { moveUp: (r) => move(r, -1), moveDown: (r) => move(r, 1) }));
  const policy = h("select", { "data-testid": "route-policy" }, POLICIES.map(([value, label]) => option(value, label, entry.policy === value)));
  const save = h("button.btn.btn-primary.btn-small", { type: "submit", text: "Save", "data-testid": "route-save" });
  const reset = h("button.btn.btn-quiet.btn-small", { type: "button", text: "Reset to catalog", "data-testid": "route-reset" });
  const saved = h("span.small.muted", { "data-testid": "route-saved", "aria-live": "polite",
    text: entry.updated_at ? `changed by ${entry.updated_by || "?"} ${new Date(entry.updated_at).toLocaleString()}` : "catalog order" });
  const form = h("form.card.route-card", { novalidate: true, "data-testid": "route-model", "data-model": entry.model, "aria-label": `Routes of ${entry.model}` },
    h("div.card-head", {}, h("h2", {}, h("code", { text: entry.model })), saved),
    field("Policy", policy), list, error.el, h("div.actions", {}, save, reset));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { policy: policy.value, routes: [...list.children].map((row) => row.read()) };
    const done = await busy(save, error, () => admin.saveRoutes(entry.model, body));
    if (done) {
      announce(`Routes of ${entry.model} saved`);
      saved.textContent = "Saved: the next job follows it.";
    }
  });
  reset.addEventListener("click", async () => {
    if (await busy(reset, error, () => admin.resetRoutes(entry.model))) refresh();
  });
  return form;
}

export async function routeList(query, { refresh }) {
  const { data } = await admin.routes();
  const filter = h("input", { type: "search", placeholder: "Filter models", value: query.get("model") || "", "data-testid": "route-filter", "aria-label": "Filter models" });
  const cards = data.map((entry) => modelCard(entry, refresh));
  const apply = () => {
    const text = filter.value.trim().toLowerCase();
    for (const card of cards) card.hidden = Boolean(text) && !card.dataset.model.toLowerCase().includes(text);
  };
  filter.addEventListener("input", apply);
  apply();
  return h("div", {},
    viewHead("Routes"),
    h("p.help", { text: "Switch a route off, change the order (↑ ↓), the weights or the policy, and save: the next job follows it, no restart needed." }),
    h("div.filter-row", {}, filter),
    cards.length ? h("div.route-cards", {}, cards) : h("p.card.muted", { text: "No model has an upstream route." }));
}
