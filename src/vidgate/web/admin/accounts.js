// Accounts: list and create; one account's balances, limits, keys, jobs and ledger,
// with top-ups (a reason is required: it is the ledger entry's memo), limits, spend
// caps, and issuing and revoking keys.

import { admin } from "./api.js";
import { badge, busy, details, field, formError, h, option, table, timeEl, usd, viewHead, announce } from "./dom.js";
import { jobRows, JOB_COLUMNS } from "./jobs.js";

let freshSecret = null; // {accountId, secret, prefix}: shown once, right after issuing

export async function accountList(query, { go }) {
  const { data } = await admin.accounts();
  const error = formError("new-account-error");
  const name = h("input", { name: "name", required: true, maxlength: 200, "data-testid": "new-account-name", autocomplete: "off" });
  const rate = h("input", { name: "rate", type: "number", min: 0, inputmode: "numeric", placeholder: "server default", "data-testid": "new-account-rate" });
  const submit = h("button.btn.btn-primary", { type: "submit", text: "Create account", "data-testid": "create-account" });
  const form = h("form.card.form-inline", { novalidate: true, "aria-label": "New account" },
    h("h2", { text: "New account" }),
    h("div.field-row", {}, field("Name", name), field("Requests per minute", rate)),
    error.el, submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!name.value.trim()) return error.show("Give the account a name.");
    const body = { name: name.value.trim() };
    if (rate.value !== "") body.rate_limit_per_minute = Number(rate.value);
    const created = await busy(submit, error, () => admin.createAccount(body));
    if (created) {
      announce(`Account ${created.name} created`);
      go(`/accounts/${created.id}`);
    }
  });
  const rows = data.map((a) => [
    h("a", { href: `#/accounts/${encodeURIComponent(a.id)}`, text: a.name, "data-testid": "account-link" }),
    h("code.small", { text: a.id }),
    a.rate_limit_per_minute ?? "default",
    a.retention_days ?? "default",
    timeEl(a.created_at),
  ]);
  return h("div", {},
    viewHead("Accounts"),
    form,
    table({
      columns: [{ label: "Name" }, { label: "Id" }, { label: "Req/min", num: true }, { label: "Retention (days)", num: true }, { label: "Created" }],
      rows, testid: "accounts-table", empty: "No accounts yet: create the first one above.",
    }));
}

function topUpForm(account, refresh) {
  const error = formError("topup-error");
  const amount = h("input", { name: "amount", inputmode: "decimal", placeholder: "25.00", required: true, "data-testid": "topup-amount" });
  const mode = h("select", { name: "mode", "data-testid": "topup-mode" }, option("live", "Live"), option("test", "Test"));
  const reason = h("input", { name: "reason", required: true, maxlength: 500, placeholder: "invoice 2024-113, goodwill credit…", "data-testid": "topup-reason" });
  const submit = h("button.btn.btn-primary", { type: "submit", text: "Top up", "data-testid": "topup-submit" });
  const form = h("form.card", { novalidate: true, "aria-label": "Top up" },
    h("h2", { text: "Top up" }),
    h("div.field-row", {}, field("Amount (USD)", amount), field("Balance", mode)),
    field("Reason", reason, "Kept in the ledger entry and the audit trail."),
    error.el, submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!/^\d+(\.\d{1,6})?$/.test(amount.value.trim()) || Number(amount.value) <= 0) return error.show("Enter an amount in dollars, like 25 or 12.50.");
    if (!reason.value.trim()) return error.show("Say why: the reason goes in the ledger.");
    const done = await busy(submit, error, () =>
      admin.topUp(account.id, { amount: amount.value.trim(), mode: mode.value, memo: reason.value.trim() }));
    if (done) {
      announce(`Topped up; the ${done.mode} balance is $${done.balance}`);
      refresh();
    }
  });
  return form;
}

function limitsForm(account, refresh) {
  const error = formError("limits-error");
  const rate = h("input", { name: "rate", type: "number", min: 0, value: account.rate_limit_per_minute ?? "", placeholder: "server default", "data-testid": "limit-rate" });
  const retention = h("input", { name: "retention", type: "number", min: 1, max: 3650, value: account.retention_days ?? "", placeholder: "server default", "data-testid": "limit-retention" });
  const submit = h("button.btn", { type: "submit", text: "Save limits", "data-testid": "limits-save" });
  const form = h("form.card", { novalidate: true, "aria-label": "Limits" },
    h("h2", { text: "Limits" }),
    h("div.field-row", {}, field("Requests per minute", rate, "Empty: the server's default."), field("Keep videos (days)", retention, "Empty: the server's default.")),
    error.el, submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {
      rate_limit_per_minute: rate.value === "" ? null : Number(rate.value),
      retention_days: retention.value === "" ? null : Number(retention.value),
    };
    const done = await busy(submit, error, () => admin.changeAccount(account.id, body));
    if (done) {
      announce("Limits saved");
      refresh();
    }
  });
  return form;
}

function capInput(value, label, testid) {
  return h("input.input-small", { inputmode: "decimal", value: value ?? "", placeholder: "no cap", "aria-label": label, "data-testid": testid });
}

function keyRow(key, refresh) {
  const error = formError("key-error");
  const daily = capInput(key.spend_cap_daily, `Daily cap of ${key.prefix}`, "key-cap-daily");
  const total = capInput(key.spend_cap_total, `Total cap of ${key.prefix}`, "key-cap-total");
  const save = h("button.btn.btn-small", { type: "button", text: "Save caps", "data-testid": "key-caps-save", disabled: key.revoked });
  const revoke = h("button.btn.btn-small.btn-danger", { type: "button", text: "Revoke", "data-testid": "key-revoke", disabled: key.revoked });
  save.addEventListener("click", async () => {
    const cap = (input) => (input.value.trim() === "" ? null : input.value.trim());
    const done = await busy(save, error, () => admin.changeKey(key.id, { spend_cap_daily: cap(daily), spend_cap_total: cap(total) }));
    if (done) {
      announce(`Caps of ${key.prefix} saved`);
      refresh();
    }
  });
  revoke.addEventListener("click", async () => {
    if (!window.confirm(`Revoke ${key.prefix}…? Clients using it stop working at once.`)) return;
    const done = await busy(revoke, error, () => admin.revokeKey(key.id));
    if (done) refresh();
  });
  return [
    h("span", {}, h("code", { text: `${key.prefix}…` }), key.name ? h("span.small.muted.block", { text: key.name }) : null),
    badge(key.mode),
    key.revoked ? [daily.value || "—", " / ", total.value || "—"] : h("span.caps", {}, daily, total),
    usd(key.spent_total),
    key.revoked ? badge("revoked") : badge("active"),
    h("span.row-actions", {}, key.revoked ? null : [save, revoke], error.el),
  ];
}

function issueKeyForm(account, refresh) {
  const error = formError("issue-key-error");
  const mode = h("select", { name: "mode", "data-testid": "key-mode" }, option("live", "Live"), option("test", "Test"));
  const name = h("input", { name: "name", maxlength: 200, placeholder: "production server", "data-testid": "key-name" });
  const daily = h("input", { name: "daily", inputmode: "decimal", placeholder: "no cap", "data-testid": "key-daily" });
  const total = h("input", { name: "total", inputmode: "decimal", placeholder: "no cap", "data-testid": "key-total" });
  const submit = h("button.btn.btn-primary", { type: "submit", text: "Issue key", "data-testid": "issue-key" });
  const form = h("form.card", { novalidate: true, "aria-label": "Issue a key" },
    h("h2", { text: "Issue a key" }),
    h("div.field-row", {}, field("Mode", mode), field("Name", name)),
    h("div.field-row", {}, field("Daily spend cap (USD)", daily), field("Total spend cap (USD)", total)),
    error.el, submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { mode: mode.value, name: name.value.trim() };
    if (daily.value.trim()) body.spend_cap_daily = daily.value.trim();
    if (total.value.trim()) body.spend_cap_total = total.value.trim();
    const issued = await busy(submit, error, () => admin.issueKey(account.id, body));
    if (issued) {
      freshSecret = { accountId: account.id, secret: issued.secret, prefix: issued.prefix };
      refresh();
    }
  });
  return form;
}

function secretCallout(accountId) {
  if (!freshSecret || freshSecret.accountId !== accountId) return null;
  const { secret } = freshSecret;
  freshSecret = null;
  const copy = h("button.btn.btn-small", { type: "button", text: "Copy" });
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(secret);
      copy.textContent = "Copied";
    } catch {
      copy.textContent = "Select and copy";
    }
  });
  return h("div.card.callout", { role: "status" },
    h("strong", { text: "New key: copy it now, it is not shown again." }),
    h("div.secret-row", {}, h("code.secret", { text: secret, "data-testid": "key-secret" }), copy));
}

async function ledgerCard(accountId, mode) {
  const { data } = await admin.ledger(accountId, { mode, limit: 50 });
  return table({
    columns: [{ label: "When" }, { label: "Entry" }, { label: "Amount", num: true }, { label: "Held", num: true }, { label: "Job" }, { label: "Memo" }],
    rows: data.map((e) => [timeEl(e.created_at), badge(e.kind), usd(e.amount), usd(e.held_change),
      e.job_id ? h("a", { href: `#/jobs/${encodeURIComponent(e.job_id)}`, text: e.job_id }) : "—", e.memo || ""]),
    testid: `ledger-${mode}`, empty: `No ${mode} entries yet.`,
  });
}

export async function accountPage(accountId, query, { refresh }) {
  const [account, jobs, liveLedger, testLedger] = await Promise.all([
    admin.account(accountId),
    admin.accountJobs(accountId, { limit: 20 }),
    ledgerCard(accountId, "live"),
    ledgerCard(accountId, "test"),
  ]);
  const stat = (label, value, testid) => h("div.card.stat", {}, h("span.label", { text: label }), h("span.stat-value", { text: value, "data-testid": testid }));
  return h("div", { "data-testid": "account-page" },
    viewHead(account.name, h("a.btn.btn-quiet.btn-small", { href: "#/accounts", text: "← Accounts" }),
      h("a.btn.btn-quiet.btn-small", { href: `#/jobs?account=${encodeURIComponent(account.id)}`, text: "Search its jobs" })),
    details([["Id", h("code", { text: account.id })], ["Created", timeEl(account.created_at)]]),
    h("div.stats", {},
      stat("Live balance", usd(account.balances.live.balance), "balance-live"),
      stat("Live held", usd(account.balances.live.held), "held-live"),
      stat("Test balance", usd(account.balances.test.balance), "balance-test"),
      stat("Test held", usd(account.balances.test.held), "held-test")),
    secretCallout(account.id),
    h("div.grid-2", {}, topUpForm(account, refresh), limitsForm(account, refresh)),
    h("h2.section", { text: "Keys" }),
    table({
      columns: [{ label: "Key" }, { label: "Mode" }, { label: "Caps: daily / total (USD)" }, { label: "Spent", num: true }, { label: "State" }, { label: "" }],
      rows: account.keys.map((k) => keyRow(k, refresh)), testid: "keys-table", rowTestid: "key-row", empty: "No keys yet.",
    }),
    issueKeyForm(account, refresh),
    h("h2.section", { text: "Recent jobs" }),
    table({ columns: JOB_COLUMNS, rows: jobRows(jobs.data), testid: "account-jobs", rowTestid: "job-row", empty: "No jobs yet." }),
    h("h2.section", { text: "Live ledger" }), liveLedger,
    h("h2.section", { text: "Test ledger" }), testLedger);
}
