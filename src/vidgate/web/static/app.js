// The vidgate playground and dashboard: sign in with a key, try any model, watch
// the job, play the result, and see every cent in the ledger. Plain ES modules,
// no build step, nothing from outside this origin.

import { ApiError, api, pollAfterMs, session } from "./api.js";
import { availability, describe, namespaceLabel, preferred } from "./models.js";
import {
  $, $$, debounce, formatBytes, h, isoTitle, money, plural, positive, readAsDataURL, shortId, when,
} from "./util.js";

const MAX_IMAGE_BYTES = 20_000_000;
// Prices never depend on the picture, so quotes carry this 1×1 PNG instead of the
// user's (possibly large) upload; the real image goes with Send only.
const QUOTE_IMAGE =
  "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=";
const LAST_MODEL = "vidgate.playground.model";

const state = {
  account: null,
  mode: "test",
  models: [],
  byId: new Map(),
  modelsError: null,
  returnTo: "#/",
  view: null,
};

const announce = (text) => {
  $("[data-role=announce]").textContent = text;
};

function banner(text) {
  const node = $("[data-testid=banner]");
  node.textContent = text || "";
  node.hidden = !text;
}

const terminal = (job) => job.status === "completed" || job.status === "failed";

// ------------------------------------------------------------------ job tracking

/** Polls every unfinished job the page shows, honouring openai-poll-after-ms. */
const tracker = {
  jobs: new Map(),
  timers: new Map(),
  delays: new Map(),
  listeners: new Set(),

  put(job, afterMs = null) {
    const before = this.jobs.get(job.id);
    this.jobs.set(job.id, job);
    for (const listener of this.listeners) listener(job, before);
    if (terminal(job)) this.forget(job.id);
    else this.schedule(job.id, afterMs);
  },

  /** Start polling a job seen elsewhere (a history row), unless already polling. */
  watch(job) {
    const known = this.jobs.get(job.id);
    if (known && (terminal(known) || this.timers.has(job.id))) return;
    this.put(job);
  },

  schedule(id, afterMs) {
    clearTimeout(this.timers.get(id));
    const previous = this.delays.get(id) ?? 600;
    // The server's hint when it gives one; otherwise back off gently, up to 10 s.
    const delay = afterMs !== null ? Math.max(200, afterMs) : Math.min(previous * 1.6, 10_000);
    this.delays.set(id, delay);
    this.timers.set(id, setTimeout(() => this.poll(id), delay));
  },

  async poll(id) {
    this.timers.delete(id);
    if (!session.key) return;
    try {
      const { data, headers } = await api.video(id);
      this.put(data, pollAfterMs(headers));
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return signOut("Your key was rejected; sign in again.");
      if (error instanceof ApiError && error.status === 404) return this.forget(id);
      const delay = Math.min((this.delays.get(id) ?? 1000) * 2, 30_000);
      this.delays.set(id, delay);
      this.timers.set(id, setTimeout(() => this.poll(id), delay));
    }
    return undefined;
  },

  forget(id) {
    clearTimeout(this.timers.get(id));
    this.timers.delete(id);
    this.delays.delete(id);
  },

  stopAll() {
    for (const id of [...this.timers.keys()]) this.forget(id);
    this.jobs.clear();
  },
};

// ------------------------------------------------------------------ one job, shown

function statusInfo(job) {
  const inner = job.vidgate_status;
  if (job.status === "completed") return { label: "Completed", tone: "ok" };
  if (job.status === "failed") {
    if (inner === "expired") return { label: "Expired", tone: "bad" };
    if (inner === "canceled") return { label: "Canceled", tone: "bad" };
    return { label: "Failed", tone: "bad" };
  }
  if (job.status === "queued") return { label: inner === "submitting" ? "Submitting" : "Queued", tone: "wait" };
  if (inner === "fetching") return { label: "Saving result", tone: "run" };
  return { label: "Rendering", tone: "run" };
}

function statusChip(job, attrs = {}) {
  const info = statusInfo(job);
  return h("span", { class: `chip chip-${info.tone}`, "data-status": job.status, ...attrs }, info.label);
}

function jobSpecLine(job) {
  const parts = [];
  const seconds = job.duration ?? job.seconds;
  if (seconds !== null && seconds !== undefined) parts.push(`${seconds} s`);
  if (job.resolution) parts.push(job.resolution);
  if (job.aspect_ratio) parts.push(job.aspect_ratio);
  if (job.size) parts.push(job.size.replace("x", "×"));
  if (job.audio !== null && job.audio !== undefined) parts.push(job.audio ? "with audio" : "silent");
  return parts.join(" · ");
}

/** A job card that updates in place, so a playing video is never reset. */
class JobView {
  constructor(root, { linkTitle = true } = {}) {
    this.root = root;
    this.linkTitle = linkTitle;
    this.id = null;
  }

  clear() {
    this.id = null;
    this.player = null;
    this.node = null;
    this.root.replaceChildren();
  }

  /** Take the card out of the page while another view shows (test ids stay unique). */
  detach() {
    if (this.node && this.node.isConnected) this.node.remove();
  }

  attach() {
    if (this.node && !this.node.isConnected) this.root.replaceChildren(this.node);
  }

  show(job) {
    if (!job) return this.clear();
    if (job.id !== this.id) this.build(job);
    this.update(job);
    return undefined;
  }

  build(job) {
    this.id = job.id;
    this.player = null;
    this.lastStatus = null;
    this.status = h("span", { class: "chip", "data-testid": "job-status" });
    this.fill = h("div", { class: "progress-fill" });
    this.bar = h(
      "div",
      { class: "progress", role: "progressbar", "aria-label": "Job progress", "aria-valuemin": 0, "aria-valuemax": 100, "data-testid": "job-progress" },
      this.fill,
    );
    this.progressText = h("span", { class: "progress-text small muted" });
    this.stage = h("div", { class: "job-stage" });
    this.failure = h("div", { class: "job-failure", role: "alert", "data-testid": "job-error", hidden: true });
    this.actions = h("div", { class: "job-actions" });
    this.costs = h("dl", { class: "costs", "data-testid": "job-cost" });
    const title = this.linkTitle
      ? h("a", { href: `#/jobs/${job.id}`, class: "job-id mono", title: "Open this video's page" }, job.id)
      : h("span", { class: "job-id mono" }, job.id);
    this.node = h(
      "article",
      { class: "job", "data-job-id": job.id },
      h("header", { class: "job-head" }, h("div", { class: "job-head-text" }, h("div", { class: "job-model" }, job.model), title), this.status),
      job.prompt ? h("p", { class: "job-prompt" }, job.prompt) : null,
      h("p", { class: "job-spec small muted" }, jobSpecLine(job)),
      h("div", { class: "progress-row" }, this.bar, this.progressText),
      this.stage,
      this.failure,
      this.actions,
      this.costs,
    );
    this.root.replaceChildren(this.node);
  }

  update(job) {
    const info = statusInfo(job);
    this.status.className = `chip chip-${info.tone}`;
    this.status.dataset.status = job.status;
    this.status.textContent = info.label;

    const ended = terminal(job);
    const progress = ended ? 100 : Math.max(0, Math.min(100, Number(job.progress) || 0));
    this.fill.style.width = `${progress}%`;
    this.bar.setAttribute("aria-valuenow", String(progress));
    this.bar.dataset.state = job.status === "failed" ? "failed" : job.status === "completed" ? "done" : progress > 0 ? "running" : "waiting";
    this.progressText.textContent =
      job.status === "completed" ? "100%" : job.status === "failed" ? "Stopped" : progress > 0 ? `${progress}%` : info.label === "Queued" ? "Waiting for a worker" : "Starting";

    if (job.status === "completed") this.showResult(job);
    else if (job.status === "failed") this.stage.hidden = true;
    else if (!this.player) this.showPlaceholder();

    if (job.status === "failed") this.showFailure(job);
    else this.failure.hidden = true;

    this.showCosts(job);
    if (this.lastStatus !== job.status) {
      if (this.lastStatus) announce(`Video ${info.label.toLowerCase()}.`);
      this.lastStatus = job.status;
    }
  }

  showPlaceholder() {
    if (this.stage.dataset.placeholder) return;
    this.stage.dataset.placeholder = "true";
    this.stage.className = "job-stage is-waiting";
    this.stage.replaceChildren(
      h(
        "div",
        { class: "stage-placeholder" },
        h("span", { class: "spinner", "aria-hidden": "true" }),
        h("span", { class: "small muted" }, "The player appears here when the render finishes."),
      ),
    );
  }

  showResult(job) {
    if (this.player || !job.video_url) {
      if (!job.video_url && !this.player) {
        this.stage.replaceChildren(h("div", { class: "stage-placeholder small muted" }, "The video's media has been deleted or has expired."));
      }
      return;
    }
    // Set once: each poll returns a freshly signed URL, and replacing src would restart playback.
    this.player = h("video", {
      controls: true, preload: "metadata", playsinline: true, "data-testid": "video-player",
      poster: job.thumbnail_url || null, src: job.video_url, "aria-label": `Generated video ${job.id}`,
    });
    const media = job.media || {};
    const facts = [
      media.duration_s ? `${Number(media.duration_s).toFixed(1)} s` : null,
      media.width && media.height ? `${media.width}×${media.height}` : null,
      media.codec || null,
      media.bytes ? formatBytes(media.bytes) : null,
    ].filter(Boolean);
    this.stage.className = "job-stage is-done";
    delete this.stage.dataset.placeholder;
    this.stage.replaceChildren(this.player);
    this.actions.replaceChildren(
      h("a", { class: "btn btn-secondary", href: job.video_url, download: `${job.id}.mp4`, "data-testid": "download" }, "Download MP4"),
      h("span", { class: "small muted" }, facts.join(" · ")),
    );
  }

  showFailure(job) {
    const error = job.error || {};
    const refunded = job.cost?.refunded;
    const charged = job.cost?.charged;
    this.failure.hidden = false;
    this.failure.replaceChildren(
      h("strong", { class: "failure-title" }, statusInfo(job).label === "Failed" ? "Generation failed" : `Video ${statusInfo(job).label.toLowerCase()}`),
      h("p", { class: "failure-reason", "data-testid": "job-error-reason" }, error.message || "The upstream did not say why."),
      error.code ? h("p", { class: "small muted mono" }, error.code) : null,
      h(
        "p",
        { class: "failure-refund", "data-testid": "job-refund" },
        positive(refunded)
          ? `Refunded ${money(refunded)}: the hold was released back to your balance.`
          : positive(charged)
            ? `Charged ${money(charged)}.`
            : "Nothing was charged.",
      ),
    );
  }

  showCosts(job) {
    const cost = job.cost || {};
    const rows = [["Estimate", money(cost.estimated)]];
    if (!terminal(job) && positive(cost.held)) rows.push(["Held now", money(cost.held)]);
    if (cost.charged !== null && cost.charged !== undefined) rows.push(["Charged", money(cost.charged)]);
    if (positive(cost.refunded)) rows.push(["Refunded", money(cost.refunded)]);
    this.costs.replaceChildren(...rows.flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]));
  }
}

// ------------------------------------------------------------------ account chrome

async function refreshAccount() {
  try {
    const account = await api.account();
    state.account = account;
    state.mode = account.mode;
    paintAccount();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) signOut("Your key was rejected; sign in again.");
  }
}

function paintAccount() {
  const account = state.account;
  if (!account) return;
  const isTest = account.mode === "test" || session.key.startsWith("vg_test_");
  $("[data-testid=test-mode]").hidden = !isTest;
  $("[data-testid=account-name]").textContent = `${account.name} · ${account.key?.prefix ?? ""}…`;
  $("[data-testid=balance]").textContent = money(account.balance);
  $("[data-role=held-note]").textContent = positive(account.held) ? `${money(account.held)} held for running jobs` : "";
  $("[data-testid=ledger-balance]").textContent = money(account.balance);
  $("[data-testid=ledger-held]").textContent = money(account.held);
  $("[data-testid=ledger-mode]").textContent = account.mode === "test" ? "Test (simulator)" : "Live";
}

// ------------------------------------------------------------------ the form

const form = {
  el: null,
  spec: null,
  image: null, // {url, name, size?}
  touched: new Set(),
  defaultsPending: true,
  quoteSeq: 0,
  quoteAbort: null,
  output: null,
  currentJob: null,

  init() {
    this.el = $("[data-form=generate]");
    this.model = $("[data-testid=model]");
    this.prompt = $("[data-testid=prompt]");
    this.counter = $("[data-testid=prompt-counter]");
    this.duration = $("[data-testid=duration]");
    this.resolution = $("[data-testid=resolution]");
    this.aspect = $("[data-testid=aspect-ratio]");
    this.audio = $("[data-testid=audio]");
    this.options = $("[data-role=options]");
    this.imageField = $("[data-testid=image-field]");
    this.file = $("[data-testid=image-input]");
    this.url = $("[data-testid=image-url]");
    this.preview = $("[data-testid=image-preview]");
    this.imageError = $("[data-role=image-error]");
    this.quote = $("[data-testid=quote]");
    this.quoteDetail = $("[data-testid=quote-detail]");
    this.error = $("[data-testid=form-error]");
    this.send = $("[data-testid=send]");
    this.output = new JobView($("[data-role=output-job]"));
    this.requote = debounce(() => this.refreshQuote(), 250);

    this.model.addEventListener("change", () => this.selectModel(this.model.value));
    this.prompt.addEventListener("input", () => {
      this.paintCounter();
      this.requote();
    });
    this.prompt.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        this.el.requestSubmit();
      }
    });
    for (const [select, name] of [[this.duration, "duration"], [this.resolution, "resolution"], [this.aspect, "aspect_ratio"]]) {
      select.addEventListener("change", () => {
        this.touched.add(name);
        this.requote();
      });
    }
    this.audio.addEventListener("change", () => {
      this.touched.add("audio");
      this.requote();
    });
    this.file.addEventListener("change", () => this.pickFile());
    this.url.addEventListener("input", debounce(() => this.pickUrl(), 300));
    this.url.addEventListener("change", () => this.pickUrl());
    $("[data-action=clear-image]").addEventListener("click", () => {
      this.clearImage();
      this.file.focus();
    });
    $("img", this.preview).addEventListener("error", () => {
      if (this.image && !this.image.url.startsWith("data:")) {
        this.showImageError("The preview could not load that URL; the gateway will try to fetch it when you send.");
      }
    });
    this.el.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    tracker.listeners.add((job, before) => {
      if (this.currentJob === job.id) {
        this.output.show(job);
        $("[data-role=output-empty]").hidden = true;
      }
      if (before && !terminal(before) && terminal(job)) refreshAccount();
    });
  },

  fillModels() {
    const groups = new Map();
    for (const spec of state.models) {
      if (!groups.has(spec.namespace)) groups.set(spec.namespace, []);
      groups.get(spec.namespace).push(spec);
    }
    const nodes = [];
    let unavailable = 0;
    for (const [namespace, specs] of groups) {
      const labels = new Map();
      for (const spec of specs) labels.set(spec.label, (labels.get(spec.label) || 0) + 1);
      const group = h("optgroup", { label: namespaceLabel(namespace) });
      for (const spec of specs) {
        const avail = availability(spec, state.mode);
        if (!avail.ok) unavailable += 1;
        const name = labels.get(spec.label) > 1 ? `${spec.label} (${spec.id})` : spec.label;
        group.append(
          h(
            "option",
            { value: spec.id, disabled: !avail.ok, title: avail.ok ? spec.id : `Unavailable: ${avail.reason}`, "data-unavailable": avail.ok ? null : avail.reason },
            avail.ok ? name : `${name} — unavailable: ${avail.reason}`,
          ),
        );
      }
      nodes.push(group);
    }
    this.model.replaceChildren(...nodes);
    const count = state.models.length;
    $("[data-testid=model-count]").textContent = count
      ? `${plural(count, "model")}${unavailable ? `, ${unavailable} unavailable` : ""}`
      : "";
    const remembered = state.byId.get(sessionStorage.getItem(LAST_MODEL) || "");
    const usable = (spec) => spec && availability(spec, state.mode).ok;
    const first =
      (usable(remembered) && remembered) ||
      state.models.find((spec) => usable(spec) && spec.modes.includes("t2v")) ||
      state.models.find(usable) ||
      state.models[0];
    if (first) this.selectModel(first.id);
    const none = !state.models.some(usable);
    $("[data-testid=no-models]").hidden = !none || !count;
    this.send.disabled = none;
  },

  selectModel(id) {
    const spec = state.byId.get(id);
    if (!spec) return;
    this.spec = spec;
    this.model.value = id;
    try {
      sessionStorage.setItem(LAST_MODEL, id);
    } catch {
      // no storage: the choice is not remembered
    }
    this.touched.clear();
    this.defaultsPending = true;
    this.hideError();

    fillSelect(this.duration, spec.durations.map((d) => [String(d), `${d} s`]), String(preferred(spec.durations, 5, 6, 4, 8)));
    fillSelect(this.resolution, spec.resolutions.map((r) => [r, r]), preferred(spec.resolutions, "720p", "768p"));
    fillSelect(this.aspect, spec.aspectRatios.map((a) => [a, a === "adaptive" ? "Adaptive" : a]), preferred(spec.aspectRatios, "16:9"));
    $("[data-wrap=resolution]").hidden = spec.resolutions.length === 0;
    $("[data-wrap=aspect_ratio]").hidden = spec.aspectRatios.length === 0;

    this.options.replaceChildren(
      ...Object.entries(spec.options).map(([name, values]) => {
        const select = h("select", { name: `options.${name}`, "data-testid": `option-${name}`, "data-option": name });
        fillSelect(select, [["", "Default"], ...values.map((v) => [v, v])], "");
        select.addEventListener("change", () => this.requote());
        return h("label", { class: "field" }, h("span", { class: "label" }, humanize(name)), select);
      }),
    );
    this.options.hidden = Object.keys(spec.options).length === 0;

    const audioWrap = $("[data-wrap=audio]");
    const audioNote = $("[data-role=audio-note]");
    audioWrap.hidden = spec.audio !== "optional";
    this.audio.checked = false;
    audioNote.hidden = spec.audio !== "always";
    audioNote.textContent = spec.audio === "always" ? "This model always generates audio with the video." : "";

    this.imageField.hidden = spec.image === "none";
    $("[data-role=image-need]").textContent = spec.image === "required" ? "Required" : "Optional";
    $("[data-role=image-need]").className = `tag${spec.image === "required" ? " tag-strong" : ""}`;

    this.paintCounter();
    this.paintModelInfo();
    this.refreshQuote();
  },

  paintModelInfo() {
    const spec = this.spec;
    const avail = availability(spec, state.mode);
    const info = $("[data-testid=model-info]");
    const notes = [];
    if (!avail.ok) {
      notes.push(h("p", { class: "model-warning", "data-testid": "model-unavailable" }, `Unavailable: ${avail.reason}`));
    } else if (state.mode === "test" && !spec.availableLive && spec.reason) {
      notes.push(h("p", { class: "small muted" }, `Test keys run this model on the built-in simulator. Live: ${spec.reason}.`));
    }
    info.replaceChildren(
      h(
        "div",
        { class: "model-line" },
        h("code", { class: "model-id" }, spec.id),
        ...spec.modeLabels.map((label) => h("span", { class: "tag" }, label)),
      ),
      spec.description ? h("p", { class: "model-desc small muted" }, spec.description) : null,
      ...notes,
    );
  },

  paintCounter() {
    const max = this.spec ? this.spec.promptMax : 0;
    const length = this.prompt.value.length;
    this.counter.textContent = max ? `${length.toLocaleString()} / ${max.toLocaleString()}` : `${length}`;
    const over = max > 0 && length > max;
    this.counter.classList.toggle("over", over);
    this.prompt.setAttribute("aria-invalid", over ? "true" : "false");
  },

  async pickFile() {
    const file = this.file.files && this.file.files[0];
    this.hideImageError();
    if (!file) return;
    if (!file.type.startsWith("image/")) {
      this.showImageError("Choose an image file (PNG, JPEG, WebP or GIF).");
      this.file.value = "";
      return;
    }
    if (file.size > MAX_IMAGE_BYTES) {
      this.showImageError(`That image is ${formatBytes(file.size)}; the limit is ${formatBytes(MAX_IMAGE_BYTES)}.`);
      this.file.value = "";
      return;
    }
    try {
      const url = await readAsDataURL(file);
      this.url.value = "";
      this.setImage({ url, name: `${file.name} · ${formatBytes(file.size)}` });
    } catch {
      this.showImageError("That file could not be read.");
    }
  },

  pickUrl() {
    const value = this.url.value.trim();
    this.hideImageError();
    if (!value) {
      if (this.image && !this.image.url.startsWith("data:")) this.clearImage();
      return;
    }
    if (!/^https:\/\/\S+$/i.test(value) && !value.startsWith("data:image/")) {
      this.showImageError("Paste an https:// link to the image, or upload a file.");
      return;
    }
    if (this.image && this.image.url === value) return;
    this.file.value = "";
    let name = value;
    try {
      name = new URL(value).host;
    } catch {
      // a data: URL has no host
    }
    this.setImage({ url: value, name });
  },

  setImage(image) {
    this.image = image;
    $("img", this.preview).src = image.url;
    $("[data-role=image-name]").textContent = image.name;
    this.preview.hidden = false;
    this.requote();
  },

  clearImage() {
    this.image = null;
    this.file.value = "";
    this.url.value = "";
    $("img", this.preview).removeAttribute("src");
    this.preview.hidden = true;
    this.hideImageError();
    this.requote();
  },

  showImageError(text) {
    this.imageError.textContent = text;
    this.imageError.hidden = false;
  },

  hideImageError() {
    this.imageError.hidden = true;
  },

  /** The request body; for a quote, untouched fields are left to the server's defaults at first. */
  body({ forQuote }) {
    const spec = this.spec;
    const omit = (name) => forQuote && this.defaultsPending && !this.touched.has(name);
    const body = { model: spec.id, prompt: this.prompt.value };
    if (forQuote && !body.prompt.trim()) body.prompt = "A quote for these settings";
    if (spec.durations.length && this.duration.value && !omit("duration")) body.duration = Number(this.duration.value);
    if (spec.resolutions.length && this.resolution.value && !omit("resolution")) body.resolution = this.resolution.value;
    if (spec.aspectRatios.length && this.aspect.value && !omit("aspect_ratio")) body.aspect_ratio = this.aspect.value;
    if (spec.audio === "optional" && !omit("audio")) body.audio = this.audio.checked;
    const options = {};
    for (const select of $$("select[data-option]", this.options)) if (select.value) options[select.dataset.option] = select.value;
    if (Object.keys(options).length) body.options = options;
    if (spec.image !== "none") {
      if (forQuote) {
        if (this.image || spec.image === "required") body.image_url = QUOTE_IMAGE;
      } else if (this.image) {
        body.image_url = this.image.url;
      }
    }
    return body;
  },

  async refreshQuote() {
    this.requote.cancel();
    const spec = this.spec;
    if (!spec || !state.account) return;
    if (this.quoteAbort) this.quoteAbort.abort();
    const seq = ++this.quoteSeq;
    const avail = availability(spec, state.mode);
    if (!avail.ok) {
      this.paintQuote({ state: "error", amount: "—", detail: "This model cannot be ordered now." });
      return;
    }
    if (this.prompt.value.length > spec.promptMax) {
      this.paintQuote({ state: "error", amount: "—", detail: `Shorten the prompt to ${spec.promptMax.toLocaleString()} characters to see a price.` });
      return;
    }
    this.quoteAbort = new AbortController();
    this.quote.closest(".quote-box").dataset.state = "loading";
    try {
      const quote = await api.quote(this.body({ forQuote: true }), this.quoteAbort.signal);
      if (seq !== this.quoteSeq) return;
      if (this.defaultsPending) this.applyDefaults(quote);
      const prefix = `${quote.model}: `;
      const lines = (quote.breakdown || [])
        .map((line) => (line.label && line.label.startsWith(prefix) ? line.label.slice(prefix.length) : line.label))
        .filter(Boolean);
      if (quote.credits !== null && quote.credits !== undefined && !lines.some((line) => line.includes("credit"))) {
        lines.push(`${quote.credits} credits`);
      }
      this.paintQuote({
        state: quote.sufficient === false ? "insufficient" : "ready",
        amount: money(quote.amount),
        raw: quote.amount,
        detail: quote.sufficient === false ? `More than your available balance. ${lines.join(" · ")}` : lines.join(" · "),
      });
      $("[data-testid=balance]").textContent = money(quote.balance);
    } catch (error) {
      if (error && error.name === "AbortError") return;
      if (seq !== this.quoteSeq) return;
      if (error instanceof ApiError && error.status === 401) {
        signOut("Your key was rejected; sign in again.");
        return;
      }
      this.paintQuote({ state: "error", amount: "—", detail: error.message || "No price for these settings." });
    }
  },

  applyDefaults(quote) {
    const set = (select, name, value) => {
      if (this.touched.has(name) || value === null || value === undefined) return;
      if ([...select.options].some((option) => option.value === String(value))) select.value = String(value);
    };
    set(this.duration, "duration", quote.duration);
    set(this.resolution, "resolution", quote.resolution);
    set(this.aspect, "aspect_ratio", quote.aspect_ratio);
    if (this.spec.audio === "optional" && !this.touched.has("audio") && typeof quote.audio === "boolean") this.audio.checked = quote.audio;
    this.defaultsPending = false;
  },

  paintQuote({ state: quoteState, amount, raw = null, detail = "" }) {
    const box = this.quote.closest(".quote-box");
    box.dataset.state = quoteState;
    this.quote.textContent = amount;
    if (raw === null) delete this.quote.dataset.amount;
    else this.quote.dataset.amount = raw;
    this.quoteDetail.textContent = detail;
  },

  showError(text) {
    this.error.textContent = text;
    this.error.hidden = false;
  },

  hideError() {
    this.error.hidden = true;
    this.error.textContent = "";
  },

  async submit() {
    const spec = this.spec;
    this.hideError();
    if (!spec) return;
    const avail = availability(spec, state.mode);
    if (!avail.ok) return this.showError(`${spec.label} cannot be ordered: ${avail.reason}`);
    if (spec.promptRequired && !this.prompt.value.trim()) {
      this.showError("Write a prompt first.");
      this.prompt.focus();
      return undefined;
    }
    if (this.prompt.value.length > spec.promptMax) {
      this.showError(`The prompt is ${this.prompt.value.length.toLocaleString()} characters; ${spec.label} accepts at most ${spec.promptMax.toLocaleString()}.`);
      this.prompt.focus();
      return undefined;
    }
    if (spec.image === "required" && !this.image) {
      this.showError(`${spec.label} starts from an image: upload one or paste an https link.`);
      this.file.focus();
      return undefined;
    }
    this.send.disabled = true;
    this.send.textContent = "Sending…";
    try {
      const { data, headers } = await api.create(this.body({ forQuote: false }), newIdempotencyKey());
      this.currentJob = data.id;
      $("[data-role=output-empty]").hidden = true;
      tracker.put(data, pollAfterMs(headers));
      historyView.stale = true;
      announce("Video submitted.");
      refreshAccount().then(() => this.refreshQuote());
      if (window.matchMedia("(max-width: 900px)").matches) $("[data-testid=output]").scrollIntoView({ behavior: "smooth", block: "start" });
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return signOut("Your key was rejected; sign in again.");
      this.showError(error.message || "The video could not be submitted.");
      const field = { prompt: this.prompt, duration: this.duration, resolution: this.resolution, aspect_ratio: this.aspect, image_url: this.file, audio: this.audio }[error.param];
      if (field && !field.closest("[hidden]")) field.focus();
    } finally {
      this.send.disabled = false;
      this.send.textContent = "Send";
    }
    return undefined;
  },

  reset() {
    this.currentJob = null;
    this.output.clear();
    $("[data-role=output-empty]").hidden = false;
  },
};

function newIdempotencyKey() {
  if (window.crypto && typeof window.crypto.randomUUID === "function") return `playground-${window.crypto.randomUUID()}`;
  const bytes = new Uint8Array(16);
  window.crypto.getRandomValues(bytes);
  return `playground-${[...bytes].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

function fillSelect(select, pairs, selected) {
  select.replaceChildren(...pairs.map(([value, label]) => h("option", { value }, label)));
  if (selected !== null && selected !== undefined && pairs.some(([value]) => value === selected)) select.value = selected;
}

function humanize(name) {
  const text = name.replace(/[_-]+/g, " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

// ------------------------------------------------------------------ history

const historyView = {
  cursors: [null],
  index: 0,
  page: null,
  stale: true,

  init() {
    this.body = $("[data-testid=history-table] tbody");
    $("[data-action=history-refresh]").addEventListener("click", () => this.load(true));
    $("[data-action=history-older]").addEventListener("click", () => this.go(this.index + 1));
    $("[data-action=history-newer]").addEventListener("click", () => this.go(this.index - 1));
    tracker.listeners.add((job) => {
      if (!this.page) return;
      const index = this.page.data.findIndex((row) => row.id === job.id);
      if (index >= 0) {
        this.page.data[index] = job;
        const row = this.body.querySelector(`tr[data-job-id="${CSS.escape(job.id)}"]`);
        if (row) row.replaceWith(this.row(job));
      }
    });
  },

  go(index) {
    if (index < 0 || index >= this.cursors.length) return;
    this.index = index;
    this.load(false);
  },

  async load(reset) {
    if (reset) {
      this.cursors = [null];
      this.index = 0;
    }
    this.stale = false;
    const table = $("[data-testid=history-table]");
    table.setAttribute("aria-busy", "true");
    try {
      const page = await api.videos({ after: this.cursors[this.index], limit: 20 });
      this.page = page;
      this.cursors.length = this.index + 1;
      if (page.has_more && page.last_id) this.cursors.push(page.last_id);
      this.render();
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return signOut("Your key was rejected; sign in again.");
      banner(`History could not be loaded: ${error.message}`);
    } finally {
      table.removeAttribute("aria-busy");
    }
    return undefined;
  },

  render() {
    const rows = this.page.data;
    this.body.replaceChildren(...rows.map((job) => this.row(job)));
    $("[data-role=history-empty]").hidden = rows.length > 0 || this.index > 0;
    $("[data-action=history-newer]").disabled = this.index === 0;
    $("[data-action=history-older]").disabled = this.index + 1 >= this.cursors.length;
    $("[data-role=history-page]").textContent = rows.length ? `Page ${this.index + 1}` : "";
    for (const job of rows) if (!terminal(job)) tracker.watch(job);
  },

  row(job) {
    const open = `#/jobs/${job.id}`;
    const thumb = job.thumbnail_url
      ? h("img", { src: job.thumbnail_url, alt: "", loading: "lazy", width: 80, height: 45, class: "thumb" })
      : h("span", { class: `thumb thumb-empty thumb-${job.status}`, "aria-hidden": "true" });
    return h(
      "tr",
      {
        class: "row-link",
        "data-job-id": job.id,
        "data-testid": "history-row",
        onclick: (event) => {
          if (event.target.closest("a")) return;
          location.hash = open;
        },
      },
      h("td", { class: "col-thumb" }, thumb),
      h(
        "td",
        { class: "col-video" },
        h("a", { href: open, class: "row-title" }, job.prompt || "(no prompt)"),
        h("span", { class: "mono small muted" }, shortId(job.id)),
      ),
      h("td", { "data-label": "Model", class: "col-model" }, job.model),
      h("td", { "data-label": "Duration", class: "num col-dur" }, `${job.duration ?? job.seconds} s`),
      h("td", { "data-label": "Status", class: "col-status" }, statusChip(job)),
      h("td", { "data-label": "Cost", class: "num col-cost" }, costSummary(job)),
      h("td", { "data-label": "Created", class: "col-when" }, h("time", { datetime: isoTitle(job.created_at), title: isoTitle(job.created_at) }, when(job.created_at))),
    );
  },
};

function costSummary(job) {
  const cost = job.cost || {};
  if (job.status === "completed") return money(cost.charged ?? cost.estimated);
  if (job.status === "failed") {
    return positive(cost.refunded) ? h("span", { class: "refund" }, `${money(cost.refunded)} refunded`) : money(cost.charged ?? "0");
  }
  return h("span", { class: "muted" }, `${money(cost.estimated)} held`);
}

// ------------------------------------------------------------------ ledger

const KIND_LABELS = { topup: "Top-up", hold: "Hold", capture: "Capture", release: "Release", adjustment: "Adjustment" };

function ledgerKind(kind) {
  return h("span", { class: `chip kind-${kind}` }, KIND_LABELS[kind] || kind);
}

function signed(value, micros) {
  const zero = micros === 0 || !Number.parseFloat(value);
  return h("span", { class: zero ? "muted" : micros > 0 || Number.parseFloat(value) > 0 ? "plus" : "minus" }, zero ? "—" : money(value, { signed: true }));
}

const ledger = {
  cursors: [null],
  index: 0,

  init() {
    this.body = $("[data-testid=ledger-table] tbody");
    $("[data-action=ledger-refresh]").addEventListener("click", () => this.load(true));
    $("[data-action=ledger-older]").addEventListener("click", () => this.go(this.index + 1));
    $("[data-action=ledger-newer]").addEventListener("click", () => this.go(this.index - 1));
  },

  go(index) {
    if (index < 0 || index >= this.cursors.length) return;
    this.index = index;
    this.load(false);
  },

  async load(reset) {
    if (reset) {
      this.cursors = [null];
      this.index = 0;
    }
    const table = $("[data-testid=ledger-table]");
    table.setAttribute("aria-busy", "true");
    try {
      const [page] = await Promise.all([api.ledger({ before: this.cursors[this.index], limit: 25 }), refreshAccount()]);
      this.cursors.length = this.index + 1;
      if (page.has_more && page.next_before) this.cursors.push(page.next_before);
      this.body.replaceChildren(...page.data.map((entry) => this.row(entry)));
      $("[data-role=ledger-empty]").hidden = page.data.length > 0;
      $("[data-action=ledger-newer]").disabled = this.index === 0;
      $("[data-action=ledger-older]").disabled = this.index + 1 >= this.cursors.length;
      $("[data-role=ledger-page]").textContent = page.data.length ? `Page ${this.index + 1}` : "";
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return signOut("Your key was rejected; sign in again.");
      banner(`The ledger could not be loaded: ${error.message}`);
    } finally {
      table.removeAttribute("aria-busy");
    }
    return undefined;
  },

  row(entry) {
    return h(
      "tr",
      { "data-kind": entry.kind, "data-job-id": entry.job_id || null, "data-testid": "ledger-row" },
      h("td", { class: "col-when" }, h("time", { datetime: entry.created_at, title: entry.created_at }, when(entry.created_at))),
      h("td", { "data-label": "Entry" }, ledgerKind(entry.kind)),
      h("td", { "data-label": "Balance", class: "num" }, signed(entry.amount, entry.amount_micros)),
      h("td", { "data-label": "Held", class: "num" }, signed(entry.held_change, entry.held_change_micros)),
      h("td", { "data-label": "Job" }, entry.job_id ? h("a", { href: `#/jobs/${entry.job_id}`, class: "mono", "data-testid": "ledger-job-link", title: entry.job_id }, shortId(entry.job_id)) : h("span", { class: "muted" }, "—")),
      h("td", { "data-label": "Note", class: "col-memo small muted" }, entry.memo || ""),
    );
  },
};

// ------------------------------------------------------------------ one job's page

/** One ledger entry of a job, in words: "$0.16 held", "$0.16 charged", "$0.16 returned". */
function miniAmount(entry) {
  const held = entry.held_change ? entry.held_change.replace(/^[-+]/, "") : "0";
  if (entry.kind === "hold") return `${money(held)} held`;
  if (entry.kind === "capture") return `${money(held)} charged`;
  if (entry.kind === "release") return `${money(entry.amount)} returned`;
  return money(entry.amount, { signed: true });
}

const jobPage = {
  id: null,

  init() {
    this.view = new JobView($("[data-role=job-card]"), { linkTitle: false });
    tracker.listeners.add((job, before) => {
      if (job.id !== this.id) return;
      this.view.show(job);
      this.details(job);
      if (before && !terminal(before) && terminal(job)) this.loadLedger(job.id);
    });
  },

  async open(id) {
    this.id = id;
    const known = tracker.jobs.get(id);
    if (known) {
      this.view.show(known);
      this.details(known);
    } else {
      this.view.clear();
      $("[data-role=job-details]").replaceChildren();
    }
    this.loadLedger(id);
    try {
      const { data, headers } = await api.video(id);
      if (this.id !== id) return;
      tracker.put(data, pollAfterMs(headers));
      if (!known) {
        this.view.show(data);
        this.details(data);
      }
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return signOut("Your key was rejected; sign in again.");
      this.view.clear();
      $("[data-role=job-card]").append(h("p", { class: "empty" }, error.status === 404 ? "No such video on this account (it may have been deleted)." : error.message));
    }
    return undefined;
  },

  details(job) {
    const rows = [
      ["Model", job.model],
      ["Status", `${statusInfo(job).label} (${job.vidgate_status})`],
      ["Created", when(job.created_at)],
      ["Finished", job.completed_at ? when(job.completed_at) : "—"],
      ["Duration", `${job.duration ?? job.seconds} s`],
      ["Resolution", job.resolution || "—"],
      ["Aspect ratio", job.aspect_ratio || "—"],
      ["Size", job.size ? job.size.replace("x", "×") : "—"],
      ["Audio", job.audio ? "Yes" : "No"],
      ["Mode", job.mode === "test" ? "Test (simulator)" : "Live"],
      ["Upstream", job.upstream ? job.upstream.provider : "—"],
      ["Media expires", job.expires_at ? when(job.expires_at) : "—"],
    ];
    $("[data-role=job-details]").replaceChildren(...rows.flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]));
  },

  async loadLedger(id) {
    const list = $("[data-testid=job-ledger]");
    try {
      const page = await api.ledger({ jobId: id, limit: 50 });
      if (this.id !== id) return;
      list.replaceChildren(
        ...(page.data.length
          ? page.data
              .slice()
              .reverse()
              .map((entry) =>
                h(
                  "li",
                  { "data-kind": entry.kind },
                  ledgerKind(entry.kind),
                  h("span", { class: "num" }, miniAmount(entry)),
                  h("time", { class: "small muted", datetime: entry.created_at }, when(entry.created_at)),
                ),
              )
          : [h("li", { class: "muted small" }, "No entries.")]),
      );
    } catch {
      list.replaceChildren(h("li", { class: "muted small" }, "Could not load the entries."));
    }
  },
};

// ------------------------------------------------------------------ sign in, routing

async function loadModels() {
  if (state.models.length) return;
  try {
    state.models = (await api.models()).map(describe);
    state.byId = new Map(state.models.map((spec) => [spec.id, spec]));
    state.modelsError = null;
  } catch (error) {
    state.modelsError = error.message;
    banner(`The model catalog could not be loaded: ${error.message}`);
  }
}

async function signIn(key) {
  const account = await api.account(key);
  session.key = key;
  state.account = account;
  state.mode = account.mode;
  try {
    paintAccount();
    await loadModels();
    form.fillModels();
  } catch (error) {
    session.key = "";
    state.account = null;
    $("[data-testid=test-mode]").hidden = true;
    throw error;
  }
  historyView.stale = true;
}

function signOut(message = "") {
  session.key = "";
  state.account = null;
  tracker.stopAll();
  form.reset();
  historyView.page = null;
  historyView.stale = true;
  banner("");
  for (const node of $$("[data-testid=test-mode], .nav, .whoami")) node.hidden = true;
  const error = $("[data-testid=sign-in-error]");
  error.textContent = message;
  error.hidden = !message;
  state.returnTo = "#/";
  if (location.hash && location.hash !== "#/") location.hash = "#/";
  route();
}

function initSignIn() {
  const formEl = $("[data-form=signin]");
  const input = $("[data-testid=api-key]");
  const button = $("[data-testid=sign-in]");
  const error = $("[data-testid=sign-in-error]");
  const toggle = $("[data-action=toggle-key]");
  toggle.addEventListener("click", () => {
    const show = input.type === "password";
    input.type = show ? "text" : "password";
    toggle.textContent = show ? "Hide" : "Show";
    toggle.setAttribute("aria-pressed", String(show));
  });
  formEl.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    error.hidden = true;
    if (!key) {
      error.textContent = "Paste an API key.";
      error.hidden = false;
      input.focus();
      return;
    }
    button.disabled = true;
    button.textContent = "Signing in…";
    try {
      await signIn(key);
      input.value = "";
      const target = state.returnTo || "#/";
      if (location.hash !== target) location.hash = target;
      else route();
      requestAnimationFrame(() => {
        if (state.view === "playground") form.prompt.focus();
      });
    } catch (failure) {
      error.textContent =
        failure instanceof ApiError && failure.status === 401
          ? "That key was not accepted. Check it, or issue a new one with “vidgate keys create”."
          : failure.message || "Sign-in failed.";
      error.hidden = false;
      input.focus();
    } finally {
      button.disabled = false;
      button.textContent = "Sign in";
    }
  });
  $("[data-testid=sign-out]").addEventListener("click", () => signOut());
}

const TITLES = { signin: "Sign in", playground: "Playground", history: "History", ledger: "Ledger", job: "Video" };

function showView(name) {
  const changed = state.view !== null && state.view !== name;
  state.view = name;
  if (name === "playground") form.output.attach();
  else form.output.detach();
  if (name !== "job") {
    jobPage.id = null;
    jobPage.view.clear();
  }
  for (const section of $$("[data-view]")) section.hidden = section.dataset.view !== name;
  const signedIn = name !== "signin";
  $(".nav").hidden = !signedIn;
  $(".whoami").hidden = !signedIn;
  for (const link of $$("[data-nav]")) {
    const current = link.dataset.nav === name || (name === "job" && link.dataset.nav === "history");
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `vidgate · ${TITLES[name] || "Playground"}`;
  if (changed && name !== "playground" && name !== "signin") {
    const heading = $(`[data-view=${name}] h1`);
    heading.tabIndex = -1;
    heading.focus({ preventScroll: true });
  }
}

function route() {
  const hash = location.hash || "#/";
  if (!state.account || !session.key) {
    if (hash !== "#/" && hash !== "#/signin") state.returnTo = hash;
    showView("signin");
    return;
  }
  const [, first = "", second = ""] = hash.split("/");
  if (first === "history") {
    showView("history");
    historyView.load(historyView.stale || !historyView.page);
  } else if (first === "ledger") {
    showView("ledger");
    ledger.load(true);
  } else if (first === "jobs" && second) {
    showView("job");
    jobPage.open(decodeURIComponent(second));
  } else {
    showView("playground");
    form.refreshQuote();
  }
  window.scrollTo({ top: 0 });
}

async function boot() {
  initSignIn();
  form.init();
  historyView.init();
  ledger.init();
  jobPage.init();
  window.addEventListener("hashchange", route);
  const key = session.key;
  if (key) {
    try {
      await signIn(key);
    } catch {
      session.key = "";
    }
  }
  route();
  document.documentElement.dataset.ready = "true";
}

boot();
