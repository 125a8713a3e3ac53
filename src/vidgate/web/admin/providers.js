// Providers: each configured upstream's breaker, recent submit outcomes and error
// rate, and a Test button that runs the provider's own cheap check (buys nothing).

import { admin } from "./api.js";
import { badge, busy, formError, h, percent, table, timeEl, viewHead } from "./dom.js";

function testButton(name) {
  const result = h("span.small", { "data-testid": "provider-test-result", "aria-live": "polite" });
  const error = formError("provider-test-error");
  const button = h("button.btn.btn-small", { type: "button", text: "Test", "data-testid": "provider-test" });
  button.addEventListener("click", async () => {
    result.textContent = "checking…";
    const done = await busy(button, error, () => admin.testProvider(name));
    result.textContent = done ? `${done.ok ? "✓" : "✗"} ${done.result} (${done.ms} ms)` : "";
    result.className = `small ${done && done.ok ? "ok-text" : "error-text"}`;
  });
  return h("span.row-actions", {}, button, result, error.el);
}

export async function providerList() {
  const { data } = await admin.providers();
  const rows = data.map((p) => [
    h("span", {}, h("strong", { text: p.name }), h("span.small.muted.block", { text: p.label })),
    h("span", {}, badge(p.breaker, "provider-breaker"),
      p.keys && p.keys.length > 1 ? h("ul.plain.small", {}, p.keys.map((k) => h("li", {}, `${k.label} `, badge(k.breaker)))) : null),
    String(p.attempts),
    String(p.accepted),
    String(p.refused),
    String(p.unknown),
    percent(p.error_rate),
    p.last_error ? h("span.small", {}, p.last_error, " ", timeEl(p.last_error_at)) : "—",
    testButton(p.name),
  ]);
  const window = data.length ? data[0].window_hours : 24;
  return h("div", {},
    viewHead("Providers"),
    h("p.help", { text: `Submit attempts over the last ${window} hours. The breaker is this process's view: it opens after repeated failures and only delays jobs, it never fails one.` }),
    table({
      columns: [{ label: "Provider" }, { label: "Breaker" }, { label: "Attempts", num: true }, { label: "Accepted", num: true },
        { label: "Refused", num: true }, { label: "Unknown", num: true }, { label: "Error rate", num: true }, { label: "Last error" }, { label: "" }],
      rows, testid: "providers-table", rowTestid: "provider-row",
      empty: "No upstream is configured: set VIDGATE_<NAME>_API_KEY (test keys always run on the simulator).",
    }));
}
