// Jobs: search by any id a client quotes (native, Thalam task, Venice queue, Apiframe,
// Kyma, MiniMax task or file number), account, model, provider, state and time; and a
// job's whole life with its money, and the cancel, retry and refund actions.

import { admin } from "./api.js";
import { badge, busy, details, field, formError, h, option, table, timeEl, usd, viewHead, announce } from "./dom.js";

const STATES = ["queued", "submitting", "running", "fetching", "succeeded", "failed", "expired", "canceled"];
const ENDED_WITHOUT_VIDEO = new Set(["failed", "expired", "canceled"]);
const TERMINAL = new Set(["succeeded", ...ENDED_WITHOUT_VIDEO]);
const ID_LABELS = {
  native: "Id (Thalam task, Kyma job)",
  uuid: "Venice queue id, Apiframe job id",
  minimax_task_id: "MiniMax task_id",
};

export const JOB_COLUMNS = [
  { label: "Job" }, { label: "Model" }, { label: "Provider" }, { label: "State" },
  { label: "Charged", num: true }, { label: "Created" },
];

export function jobRows(jobs) {
  return jobs.map((j) => [
    h("a.mono", { href: `#/jobs/${encodeURIComponent(j.id)}`, text: j.id, "data-testid": "job-link" }),
    j.model,
    j.provider || "—",
    badge(j.status),
    usd(j.charged),
    timeEl(j.created_at),
  ]);
}

/** datetime-local value (the operator's local time) -> ISO in UTC; "" stays "". */
function toIso(local) {
  if (!local) return "";
  const date = new Date(local);
  return Number.isNaN(date.getTime()) ? "" : date.toISOString();
}

function toLocal(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

const FILTERS = ["q", "account", "model", "provider", "status", "mode", "since", "until", "before"];

export async function jobSearch(query, { go }) {
  const asked = Object.fromEntries(FILTERS.map((name) => [name, query.get(name) || ""]));
  const input = (name, label, placeholder, testid) =>
    field(label, h("input", { name, value: asked[name], placeholder, "data-testid": testid, autocomplete: "off", spellcheck: "false" }));
  const status = h("select", { name: "status", "data-testid": "job-search-status" },
    option("", "Any state"), STATES.map((s) => option(s, s, asked.status === s)));
  const mode = h("select", { name: "mode", "data-testid": "job-search-mode" },
    option("", "Live and test"), option("live", "Live", asked.mode === "live"), option("test", "Test", asked.mode === "test"));
  const since = h("input", { type: "datetime-local", name: "since", value: toLocal(asked.since), "data-testid": "job-search-since" });
  const until = h("input", { type: "datetime-local", name: "until", value: toLocal(asked.until), "data-testid": "job-search-until" });
  const submit = h("button.btn.btn-primary", { type: "submit", text: "Search", "data-testid": "job-search" });
  const form = h("form.card", { novalidate: true, role: "search", "aria-label": "Find jobs" },
    input("q", "Job id", "video_…, a Thalam task id, Venice queue id, MiniMax task_id…", "job-search-q"),
    h("div.field-row", {},
      input("account", "Account (id or name)", "", "job-search-account"),
      input("model", "Model", "kling-3-pro", "job-search-model"),
      input("provider", "Provider", "fal", "job-search-provider")),
    h("div.field-row", {}, field("State", status), field("Mode", mode), field("Created from", since), field("Created before", until)),
    submit);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const values = Object.fromEntries(["q", "account", "model", "provider"].map((n) => [n, form.elements[n].value.trim()]));
    go("/jobs", { ...values, status: status.value, mode: mode.value, since: toIso(since.value), until: toIso(until.value) });
  });

  const results = await admin.jobs({ ...asked, limit: 50 });
  const older = results.has_more && results.data.length
    ? h("a.btn.btn-quiet.btn-small", { href: `#/jobs?${new URLSearchParams({ ...nonEmpty(asked), before: results.data.at(-1).id })}`, text: "Older →", "data-testid": "jobs-older" })
    : null;
  return h("div", {},
    viewHead("Jobs"),
    form,
    h("p.small.muted", { "data-testid": "job-count", text: `${results.data.length}${results.has_more ? "+" : ""} job${results.data.length === 1 ? "" : "s"}` }),
    table({ columns: JOB_COLUMNS, rows: jobRows(results.data), testid: "jobs-table", rowTestid: "job-row", empty: "No job matches." }),
    h("div.pager", {}, older));
}

function nonEmpty(values) {
  return Object.fromEntries(Object.entries(values).filter(([name, v]) => v && name !== "before"));
}

function moneyCard(money) {
  const marginClass = money.margin_micros === null ? "" : money.margin_micros < 0 ? ".negative" : ".positive";
  return h("section.card", { "aria-label": "Money", "data-testid": "job-money" },
    h("h2", { text: "Money" }),
    details([
      ["Estimated", usd(money.estimated)],
      ["Held", usd(money.held)],
      ["Charged", h("span", { text: usd(money.charged), "data-testid": "job-charged" })],
      ["Released to the balance", usd(money.released)],
      ["Refunded by operators", usd(money.refunded)],
      ["Upstream cost", h("span", {}, usd(money.upstream_cost),
        money.upstream_cost_source ? h("span.small.muted", { text: ` (${money.upstream_cost_source}${money.upstream_cost_units ? `, ${money.upstream_cost_units}` : ""})` }) : null)],
      ["Margin", h(`strong.margin${marginClass}`, { text: money.margin === null ? "not known yet" : usd(money.margin), "data-testid": "job-margin" })],
      ["Margin after refunds", usd(money.net_margin)],
    ]));
}

function actionsCard(life, refresh) {
  const job = life.job;
  const error = formError("job-action-error");
  const parts = [];
  if (!TERMINAL.has(job.status)) {
    const cancel = h("button.btn.btn-danger", { type: "button", text: "Cancel job", "data-testid": "job-cancel" });
    cancel.addEventListener("click", async () => {
      if (!window.confirm("Cancel this job? Its hold is released to the balance.")) return;
      if (await busy(cancel, error, () => admin.cancel(job.id, "canceled by an operator"))) refresh();
    });
    parts.push(cancel);
  }
  if (ENDED_WITHOUT_VIDEO.has(job.status)) {
    const retry = h("button.btn", { type: "button", text: "Retry as a new job", "data-testid": "job-retry" });
    retry.addEventListener("click", async () => {
      const made = await busy(retry, error, () => admin.retry(job.id));
      if (made) location.hash = `#/jobs/${encodeURIComponent(made.id)}`;
    });
    parts.push(retry, h("p.help", { text: "A retry is a new job with the same request and key: it holds its own money; this job's stays settled. Retrying twice gives the same new job." }));
  }
  if (life.money.refundable_micros > 0) {
    const amount = h("input", { inputmode: "decimal", placeholder: life.money.refundable, "data-testid": "refund-amount" });
    const reason = h("input", { maxlength: 500, placeholder: "why (kept in the ledger)", "data-testid": "refund-reason" });
    const submit = h("button.btn", { type: "submit", text: "Refund", "data-testid": "refund-submit" });
    const form = h("form.refund", { novalidate: true, "aria-label": "Refund" },
      h("div.field-row", {}, field(`Refund (up to ${usd(life.money.refundable)})`, amount), field("Reason", reason)), submit);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!reason.value.trim()) return error.show("Say why: the reason goes in the ledger.");
      const done = await busy(submit, error, () => admin.refund(job.id, { amount: amount.value.trim(), reason: reason.value.trim() }));
      if (done) {
        announce(`Refunded $${done.amount}`);
        refresh();
      }
    });
    parts.push(form);
  }
  if (!parts.length) parts.push(h("p.muted.small", { text: "Nothing to do: the job is settled and fully refunded or never charged." }));
  return h("section.card", { "aria-label": "Actions" }, h("h2", { text: "Actions" }), parts, error.el);
}

function json(value) {
  return h("pre.json", { text: JSON.stringify(value, null, 2) });
}

export async function jobPage(jobId, query, { refresh }) {
  const life = await admin.job(jobId);
  const job = life.job;
  const ids = Object.entries(job.public_ids).map(([name, value]) => [ID_LABELS[name] || name, h("code", { text: value, "data-testid": `public-id-${name}` })]);
  const events = table({
    columns: [{ label: "When" }, { label: "Event" }, { label: "Details" }],
    rows: life.events.map((e) => [timeEl(e.created_at), h("code.nowrap", { text: e.type }), h("code.small.wrap", { text: JSON.stringify(e.payload) })]),
    testid: "job-events", rowTestid: "event-row", empty: "No events.",
  });
  const attempts = table({
    columns: [{ label: "#", num: true }, { label: "Provider" }, { label: "Upstream model" }, { label: "Outcome" }, { label: "Upstream id" }, { label: "Error" }, { label: "Sent" }, { label: "Answered" }],
    rows: life.upstream_attempts.map((a) => [a.number, a.provider, a.upstream_model || "—", badge(a.outcome),
      a.upstream_id ? h("code.small", { text: a.upstream_id }) : "—",
      a.error ? `${a.error.code}: ${a.error.message}` : (a.possible_duplicate ? "possible duplicate" : "—"),
      timeEl(a.started_at), timeEl(a.ended_at)]),
    testid: "job-attempts", empty: "Not sent upstream (yet).",
  });
  const webhooks = table({
    columns: [{ label: "Event" }, { label: "To" }, { label: "State" }, { label: "Attempts" }],
    rows: life.webhooks.map((d) => [d.event_type, h("code.small.wrap", { text: d.url }), badge(d.status),
      d.attempts.length ? h("ul.plain", {}, d.attempts.map((a) => h("li.small", {},
        `#${a.number} `, timeEl(a.started_at), ` → ${a.status_code ?? a.error ?? "no answer"} (${a.duration_ms} ms)`))) : "none yet"]),
    testid: "job-webhooks", empty: "No webhook for this job.",
  });
  const ledger = table({
    columns: [{ label: "When" }, { label: "Entry" }, { label: "Amount", num: true }, { label: "Held", num: true }, { label: "Memo" }],
    rows: life.ledger.map((e) => [timeEl(e.created_at), badge(e.kind), usd(e.amount), usd(e.held_change), e.memo || ""]),
    testid: "job-ledger", empty: "No ledger entry.",
  });
  const audit = table({
    columns: [{ label: "When" }, { label: "Who" }, { label: "Action" }, { label: "Details" }],
    rows: life.audit.map((a) => [timeEl(a.at), a.actor, h("code.nowrap", { text: a.action }), h("code.small.wrap", { text: JSON.stringify(a.details) })]),
    testid: "job-audit", empty: "No operator has acted on this job.",
  });
  const upstream = h("section.card", { "aria-label": "Upstream" }, h("h2", { text: "Upstream" }), details([
    ["Provider", h("span", { text: job.provider || "—", "data-testid": "job-provider" })],
    ["Upstream model", job.upstream_model], ["Upstream id", job.upstream_id ? h("code", { text: job.upstream_id }) : "—"],
    ["Upstream request id", job.upstream_request_id], ["Last upstream status", job.upstream_status],
    ["Submit attempts", String(job.attempts)], ["Next step due", timeEl(job.run_at)], ["Lease", job.lease_owner ? `${job.lease_owner} until ${job.lease_expires_at}` : "—"],
  ]));
  return h("div", { "data-testid": "job-page" },
    viewHead(`Job ${job.id}`, h("a.btn.btn-quiet.btn-small", { href: "#/jobs", text: "← Jobs" })),
    h("div.job-status", {}, badge(job.status, "job-status"), job.progress && !TERMINAL.has(job.status) ? h("span.small.muted", { text: ` ${job.progress}%` }) : null,
      job.error ? h("span.small.error-text", { text: ` ${job.error.code}: ${job.error.message}` }) : null),
    h("div.grid-2", {},
      h("section.card", { "aria-label": "Job" }, h("h2", { text: "Job" }), details([
        ["Account", h("a", { href: `#/accounts/${encodeURIComponent(life.account.id)}`, text: life.account.name || life.account.id })],
        ["Model", job.model], ["Dialect", job.dialect], ["Mode", badge(job.mode)], ["Key", h("code", { text: job.key_id })],
        ["Created", timeEl(job.created_at)], ["Completed", timeEl(job.completed_at)], ["Deadline", timeEl(job.deadline_at)],
        ...ids,
      ], "job-details")),
      moneyCard(life.money)),
    h("div.grid-2", {}, upstream, actionsCard(life, refresh)),
    h("h2.section", { text: "Events" }), events,
    h("h2.section", { text: "Upstream calls and answers" }), attempts,
    h("h2.section", { text: "Webhooks" }), webhooks,
    h("h2.section", { text: "Ledger" }), ledger,
    h("h2.section", { text: "Operator actions" }), audit,
    h("details.card", {}, h("summary", { text: "Request" }), json(job.request), job.media ? json(job.media) : null));
}
