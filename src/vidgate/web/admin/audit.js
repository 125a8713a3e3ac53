// The audit trail: every admin action, who did it, to what, and when.

import { admin } from "./api.js";
import { h, table, timeEl, viewHead } from "./dom.js";

export async function auditTrail(query) {
  const target = query.get("target") || "";
  const before = query.get("before") || "";
  const page = await admin.audit({ target, before, limit: 100 });
  const link = (value) => {
    if (value.startsWith("video_")) return h("a", { href: `#/jobs/${encodeURIComponent(value)}`, text: value });
    if (value.startsWith("acct_")) return h("a", { href: `#/accounts/${encodeURIComponent(value)}`, text: value });
    return h("code", { text: value });
  };
  const older = page.has_more && page.data.length
    ? h("a.btn.btn-quiet.btn-small", { href: `#/audit?${new URLSearchParams({ ...(target ? { target } : {}), before: String(page.data.at(-1).id) })}`, text: "Older →" })
    : null;
  return h("div", {},
    viewHead("Audit trail"),
    target ? h("p.small", {}, "Only actions on ", h("code", { text: target }), ". ", h("a", { href: "#/audit", text: "Show all" })) : null,
    table({
      columns: [{ label: "When" }, { label: "Who" }, { label: "Action" }, { label: "Target" }, { label: "Details" }],
      rows: page.data.map((e) => [timeEl(e.at), e.actor, h("code.nowrap", { text: e.action }), link(e.target), h("code.small.wrap", { text: JSON.stringify(e.details) })]),
      testid: "audit-table", rowTestid: "audit-row", empty: "No admin action yet.",
    }),
    h("div.pager", {}, older));
}
