// The admin API, as the console calls it: same origin, the admin token as a Bearer
// token, and the operator's name in X-Vidgate-Actor for the audit trail.

const TOKEN_STORE = "vidgate.console.token";
const ACTOR_STORE = "vidgate.console.actor";

export class ApiError extends Error {
  constructor(status, message, { code = null, param = null } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.param = param;
  }
}

function stored(name) {
  try {
    return sessionStorage.getItem(name) || "";
  } catch {
    return "";
  }
}

function store(name, value) {
  try {
    if (value) sessionStorage.setItem(name, value);
    else sessionStorage.removeItem(name);
  } catch {
    // storage disabled: the value lives only as long as the page
  }
}

/** The token and name live in sessionStorage only: gone when the tab closes. */
export const session = {
  get token() {
    return stored(TOKEN_STORE);
  },
  set token(value) {
    store(TOKEN_STORE, value);
  },
  get actor() {
    return stored(ACTOR_STORE);
  },
  set actor(value) {
    store(ACTOR_STORE, value);
  },
};

/**
 * Call the admin API. Paths are relative ("admin/accounts") so a gateway behind a
 * proxy under a sub-path still finds its API next to the page.
 */
export async function call(path, { method = "GET", body, token = session.token, query } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (session.actor) headers["X-Vidgate-Actor"] = session.actor;
  let payload;
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let url = path;
  if (query) {
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries(query)) {
      if (value !== undefined && value !== null && value !== "") params.set(name, String(value));
    }
    const text = params.toString();
    if (text) url += `?${text}`;
  }
  let response;
  try {
    response = await fetch(url, { method, headers, body: payload, cache: "no-store" });
  } catch {
    throw new ApiError(0, "The gateway could not be reached. Is vidgate still running?", { code: "network" });
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const envelope = data && typeof data === "object" && data.error && typeof data.error === "object" ? data.error : null;
    const message = envelope?.message || `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, message, envelope || {});
  }
  return data;
}

const id = encodeURIComponent;

export const admin = {
  accounts: () => call("admin/accounts"),
  account: (accountId) => call(`admin/accounts/${id(accountId)}`),
  createAccount: (body) => call("admin/accounts", { method: "POST", body }),
  changeAccount: (accountId, body) => call(`admin/accounts/${id(accountId)}`, { method: "PATCH", body }),
  topUp: (accountId, body) => call(`admin/accounts/${id(accountId)}/topups`, { method: "POST", body }),
  issueKey: (accountId, body) => call(`admin/accounts/${id(accountId)}/keys`, { method: "POST", body }),
  changeKey: (keyId, body) => call(`admin/keys/${id(keyId)}`, { method: "PATCH", body }),
  revokeKey: (keyId) => call(`admin/keys/${id(keyId)}`, { method: "DELETE" }),
  ledger: (accountId, query) => call(`admin/accounts/${id(accountId)}/ledger`, { query }),
  accountJobs: (accountId, query) => call(`admin/accounts/${id(accountId)}/jobs`, { query }),
  jobs: (query) => call("admin/jobs", { query }),
  job: (jobId) => call(`admin/jobs/${id(jobId)}`),
  cancel: (jobId, reason) => call(`admin/jobs/${id(jobId)}/cancel`, { method: "POST", body: { reason } }),
  retry: (jobId) => call(`admin/jobs/${id(jobId)}/retry`, { method: "POST" }),
  refund: (jobId, body) => call(`admin/jobs/${id(jobId)}/refund`, { method: "POST", body }),
  providers: () => call("admin/providers"),
  testProvider: (name) => call(`admin/providers/${id(name)}/test`, { method: "POST" }),
  routes: () => call("admin/routes"),
  saveRoutes: (modelId, body) => call(`admin/routes/${encodeURIComponent(modelId)}`, { method: "PUT", body }),
  resetRoutes: (modelId) => call(`admin/routes/${encodeURIComponent(modelId)}`, { method: "DELETE" }),
  margin: (query) => call("admin/reports/margin", { query }),
  audit: (query) => call("admin/audit", { query }),
};
