// The native API, as the playground calls it: same origin, Bearer key, and the
// OpenAI error envelope turned into an ApiError with the server's own message.

const KEY_STORE = "vidgate.playground.key";

export class ApiError extends Error {
  constructor(status, message, { code = null, param = null, type = null } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.param = param;
    this.type = type;
  }
}

export const session = {
  /** The key lives in sessionStorage only: gone when the tab closes. */
  get key() {
    try {
      return sessionStorage.getItem(KEY_STORE) || "";
    } catch {
      return "";
    }
  },
  set key(value) {
    try {
      if (value) sessionStorage.setItem(KEY_STORE, value);
      else sessionStorage.removeItem(KEY_STORE);
    } catch {
      // storage disabled: the key lives only as long as the page
    }
  },
};

/**
 * Call the API. Paths are relative ("v1/models") so that a gateway served under
 * a sub-path behind a proxy still finds its API next to the page.
 * Returns {data, headers, status}; throws ApiError for non-2xx answers.
 */
export async function call(path, { method = "GET", body, key = session.key, signal, extraHeaders = {} } = {}) {
  const headers = { Accept: "application/json", ...extraHeaders };
  if (key) headers.Authorization = `Bearer ${key}`;
  let payload;
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body: payload, signal, cache: "no-store" });
  } catch (error) {
    if (error && error.name === "AbortError") throw error;
    throw new ApiError(0, "The gateway could not be reached. Is vidgate still running?", { code: "network" });
  }
  let data = null;
  const text = await response.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const envelope = data && typeof data === "object" && data.error && typeof data.error === "object" ? data.error : null;
    const message = envelope?.message || (typeof data?.detail === "string" ? data.detail : "") || `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, message, envelope || {});
  }
  return { data, headers: response.headers, status: response.status };
}

export const api = {
  account: (key) => call("v1/account", { key }).then((r) => r.data),
  models: () => call("v1/models").then((r) => r.data.data),
  quote: (body, signal) => call("v1/quotes", { method: "POST", body, signal }).then((r) => r.data),
  /** One Send is one job, even if the request is retried: the gateway replays by Idempotency-Key. */
  create: (body, idempotencyKey) =>
    call("v1/videos", { method: "POST", body, extraHeaders: idempotencyKey ? { "Idempotency-Key": idempotencyKey } : {} }),
  video: (id) => call(`v1/videos/${encodeURIComponent(id)}`),
  videos: ({ after, limit = 20 } = {}) => {
    const query = new URLSearchParams({ limit: String(limit), order: "desc" });
    if (after) query.set("after", after);
    return call(`v1/videos?${query}`).then((r) => r.data);
  },
  ledger: ({ before, limit = 25, jobId } = {}) => {
    const query = new URLSearchParams({ limit: String(limit) });
    if (before) query.set("before", String(before));
    if (jobId) query.set("job_id", jobId);
    return call(`v1/account/ledger?${query}`).then((r) => r.data);
  },
};

/** The header the gateway (like OpenAI) uses to say when to poll again. */
export function pollAfterMs(headers) {
  const raw = headers && headers.get("openai-poll-after-ms");
  const value = raw === null || raw === undefined ? Number.NaN : Number.parseInt(raw, 10);
  return Number.isFinite(value) && value >= 0 ? value : null;
}
