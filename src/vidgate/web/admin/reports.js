// Margin report: revenue, upstream cost, margin, refunds and failure rates, grouped
// by day, account, model, provider or route, as a table and a bar chart; CSV too.

import { admin, session } from "./api.js";
import { busy, field, formError, h, option, percent, table, usd, viewHead } from "./dom.js";
import { barChart } from "./chart.js";

const GROUPS = [["day", "Day"], ["account", "Account"], ["model", "Model"], ["provider", "Provider"], ["route", "Route"]];

function isoDay(offsetDays) {
  const date = new Date(Date.now() + offsetDays * 86400000);
  return date.toISOString().slice(0, 10);
}

function dollars(micros) {
  const sign = micros < 0 ? "−" : "";
  return `${sign}$${(Math.abs(micros) / 1e6).toFixed(2)}`;
}

async function downloadCsv(query, button, error) {
  await busy(button, error, async () => {
    const params = new URLSearchParams({ ...query, format: "csv" });
    const headers = { Authorization: `Bearer ${session.token}` };
    const response = await fetch(`admin/reports/margin?${params}`, { headers, cache: "no-store" });
    if (!response.ok) throw new Error(`The report could not be made (${response.status}).`);
    const url = URL.createObjectURL(new Blob([await response.text()], { type: "text/csv" }));
    const link = h("a", { href: url, download: `margin-by-${query.by}-${query.since}-${query.until}.csv` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 0);
  });
}

export async function marginReport(query, { go }) {
  const asked = {
    by: query.get("by") || "model",
    since: query.get("since") || isoDay(-30),
    until: query.get("until") || isoDay(1),
    mode: query.get("mode") || "live",
  };
  const by = h("select", { name: "by", "data-testid": "report-by" }, GROUPS.map(([v, l]) => option(v, l, v === asked.by)));
  const since = h("input", { type: "date", name: "since", value: asked.since.slice(0, 10), "data-testid": "report-since" });
  const until = h("input", { type: "date", name: "until", value: asked.until.slice(0, 10), "data-testid": "report-until" });
  const mode = h("select", { name: "mode", "data-testid": "report-mode" }, option("live", "Live", asked.mode === "live"), option("test", "Test", asked.mode === "test"));
  const submit = h("button.btn.btn-primary", { type: "submit", text: "Show", "data-testid": "report-show" });
  const csv = h("button.btn", { type: "button", text: "Download CSV", "data-testid": "report-csv" });
  const error = formError("report-error");
  const form = h("form.card", { novalidate: true, "aria-label": "Report" },
    h("div.field-row", {}, field("Group by", by), field("From", since), field("Until", until), field("Mode", mode)),
    error.el, h("div.actions", {}, submit, csv));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    go("/reports", { by: by.value, since: since.value, until: until.value, mode: mode.value });
  });
  csv.addEventListener("click", () => downloadCsv(asked, csv, error));

  const report = await admin.margin(asked);
  const rows = report.rows.map((r) => [
    h("span.wrap", { text: r.key }), String(r.jobs), String(r.succeeded), String(r.failed), percent(r.failure_rate),
    r.seconds === null || r.seconds === undefined ? "—" : Number(r.seconds).toFixed(1),
    usd(r.revenue), usd(r.upstream_cost), h("strong", { text: usd(r.margin) }), usd(r.refunds),
    r.p50_s === null || r.p50_s === undefined ? "—" : `${Number(r.p50_s).toFixed(1)} s`,
    r.p95_s === null || r.p95_s === undefined ? "—" : `${Number(r.p95_s).toFixed(1)} s`,
  ]);
  const t = report.totals || {};
  const columns = [{ label: GROUPS.find(([v]) => v === asked.by)?.[1] || "Key" }, { label: "Jobs", num: true }, { label: "Succeeded", num: true },
    { label: "Failed", num: true }, { label: "Failure rate", num: true }, { label: "Seconds", num: true }, { label: "Revenue", num: true },
    { label: "Upstream cost", num: true }, { label: "Margin", num: true }, { label: "Refunds", num: true }, { label: "p50", num: true }, { label: "p95", num: true }];
  const chart = report.rows.length
    ? h("figure.card.chart-card", {},
      barChart({
        rows: report.rows.slice(0, 20).map((r) => ({ label: r.key, values: [r.revenue_micros || 0, r.upstream_cost_micros || 0, r.margin_micros || 0] })),
        series: [{ name: "Revenue", className: "bar-revenue" }, { name: "Upstream cost", className: "bar-cost" }, { name: "Margin", className: "bar-margin" }],
        format: dollars, title: `Revenue, upstream cost and margin by ${asked.by}`, testid: "report-chart",
      }),
      report.rows.length > 20 ? h("figcaption.small.muted", { text: "The chart shows the first 20 rows; the table has them all." }) : null)
    : null;
  return h("div", {},
    viewHead("Margin"),
    form,
    h("div.stats", {},
      [["Revenue", "revenue"], ["Upstream cost", "upstream_cost"], ["Margin", "margin"], ["Refunds", "refunds"]].map(([label, name]) =>
      h("div.card.stat", {}, h("span.label", { text: label }), h("span.stat-value", { text: usd(t[name]), "data-testid": `report-total-${name}` })))),
    chart,
    table({ columns, rows, testid: "report-table", rowTestid: "report-row", empty: "No job in this period." }));
}
