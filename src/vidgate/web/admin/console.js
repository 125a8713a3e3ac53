// The operator console: sign in with the admin token, then one view per hash route.
// Every view reads and writes through the admin API (api.js) and nothing else.

import { ApiError, call, session } from "./api.js";
import { h, clear } from "./dom.js";
import * as accounts from "./accounts.js";
import * as jobs from "./jobs.js";
import * as providers from "./providers.js";
import * as routes from "./routes.js";
import * as reports from "./reports.js";
import * as audit from "./audit.js";

const $ = (selector) => document.querySelector(selector);

const VIEWS = [
  { pattern: /^\/accounts\/([^/]+)$/, nav: "accounts", view: accounts.accountPage },
  { pattern: /^\/accounts\/?$/, nav: "accounts", view: accounts.accountList },
  { pattern: /^\/jobs\/([^/]+)$/, nav: "jobs", view: jobs.jobPage },
  { pattern: /^\/jobs\/?$/, nav: "jobs", view: jobs.jobSearch },
  { pattern: /^\/providers\/?$/, nav: "providers", view: providers.providerList },
  { pattern: /^\/routes\/?$/, nav: "routes", view: routes.routeList },
  { pattern: /^\/reports\/?$/, nav: "reports", view: reports.marginReport },
  { pattern: /^\/audit\/?$/, nav: "audit", view: audit.auditTrail },
];

/** "#/jobs?q=x" -> {path: "/jobs", query: URLSearchParams} */
export function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/accounts";
  const [path, search = ""] = raw.split("?");
  return { path, query: new URLSearchParams(search) };
}

export function go(path, query) {
  const search = query ? new URLSearchParams(Object.entries(query).filter(([, v]) => v)).toString() : "";
  const target = `#${path}${search ? `?${search}` : ""}`;
  if (location.hash === target) render();
  else location.hash = target;
}

function show(name) {
  for (const section of document.querySelectorAll("[data-view]")) section.hidden = section.dataset.view !== name;
}

function banner(message) {
  const el = $("[data-testid=banner]");
  el.textContent = message || "";
  el.hidden = !message;
}

function signedIn(yes) {
  $("[data-role=nav]").hidden = !yes;
  $("[data-role=whoami]").hidden = !yes;
  $("[data-testid=actor-name]").textContent = yes ? `Signed in as ${session.actor || "admin"}` : "";
}

function signOut(message) {
  session.token = "";
  signedIn(false);
  show("signin");
  const error = $("[data-testid=sign-in-error]");
  error.textContent = message || "";
  error.hidden = !message;
  $("[data-testid=admin-token]").focus();
}

let renderCount = 0;

async function render() {
  banner("");
  if (!session.token) {
    signOut("");
    return;
  }
  signedIn(true);
  const { path, query } = parseHash();
  const match = VIEWS.map((v) => ({ ...v, found: path.match(v.pattern) })).find((v) => v.found);
  for (const link of document.querySelectorAll("[data-nav]")) {
    const current = match && link.dataset.nav === match.nav;
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  show("content");
  const container = $("[data-role=content]");
  const mine = ++renderCount;
  if (!match) {
    clear(container, h("div.card.notice", { text: `There is no console page at ${path}.` }));
    return;
  }
  clear(container, h("p.muted.small.loading", { text: "Loading…" }));
  const params = match.found.slice(1).map(decodeURIComponent);
  try {
    const node = await match.view(...params, query, { go, refresh: render });
    if (mine === renderCount) clear(container, node);
  } catch (error) {
    if (mine !== renderCount) return;
    if (error instanceof ApiError && error.status === 401) {
      signOut("The admin token was refused. Sign in again.");
      return;
    }
    clear(container);
    banner(error.message || String(error));
  }
}

async function onSignIn(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const token = form.elements.token.value.trim();
  const actor = form.elements.actor.value.trim();
  const error = $("[data-testid=sign-in-error]");
  if (!token) {
    error.textContent = "Paste the admin token.";
    error.hidden = false;
    return;
  }
  const button = $("[data-testid=sign-in]");
  button.disabled = true;
  try {
    await call("admin/accounts", { token }); // proves the token before it is kept
    session.token = token;
    session.actor = actor;
    form.reset();
    error.hidden = true;
    await render();
  } catch (failure) {
    error.textContent = failure instanceof ApiError && failure.status === 401
      ? "That is not this gateway's admin token."
      : failure.message || String(failure);
    error.hidden = false;
  } finally {
    button.disabled = false;
  }
}

function start() {
  $("[data-form=signin]").addEventListener("submit", onSignIn);
  $("[data-testid=sign-out]").addEventListener("click", () => {
    session.actor = "";
    signOut("Signed out.");
  });
  window.addEventListener("hashchange", render);
  render();
}

start();
