// What the playground needs to know about a catalog model, read from
// GET /v1/models. The constraints object is the catalog's allowed values; older
// and newer gateways spell a few of them differently, so every field is read
// defensively and falls back to what the model's modes imply.

const MODE_LABELS = {
  t2v: "Text to video",
  i2v: "Image to video",
  reference: "Reference images",
  motion_control: "Motion control",
};

export const DEFAULT_PROMPT_MAX = 2500;

function listOf(constraints, ...names) {
  for (const name of names) {
    const value = constraints[name];
    if (Array.isArray(value)) return value;
  }
  return [];
}

function firstNumber(...values) {
  for (const value of values) {
    if (typeof value === "number" && Number.isFinite(value)) return value;
    if (Array.isArray(value) && value.length && typeof value[0] === "number") return Math.max(...value);
    if (value && typeof value === "object" && typeof value.max === "number") return value.max;
  }
  return null;
}

function requirement(value) {
  const word = Array.isArray(value) ? value[0] : value;
  if (word === true) return "required";
  if (word === false) return "none";
  return word === "none" || word === "optional" || word === "required" ? word : null;
}

function audioSupport(value) {
  if (typeof value === "string" && ["none", "optional", "always"].includes(value)) return value;
  if (!Array.isArray(value)) return "none";
  const on = value.includes(true);
  const off = value.includes(false);
  if (on && off) return "optional";
  return on ? "always" : "none";
}

/** A model from /v1/models, with its constraints in one predictable shape. */
export function describe(model) {
  const c = model.constraints && typeof model.constraints === "object" ? model.constraints : {};
  const modes = Array.isArray(model.modes) ? model.modes : [];
  const options = {};
  for (const [name, values] of Object.entries(c)) {
    if (name.startsWith("options.") && Array.isArray(values) && values.length) options[name.slice(8)] = values;
  }
  if (c.options && typeof c.options === "object" && !Array.isArray(c.options)) {
    for (const [name, values] of Object.entries(c.options)) {
      if (Array.isArray(values) && values.length) options[name] = values;
    }
  }
  let image = requirement(c.image) ?? requirement(model.image);
  if (image === null) {
    const takesImage = modes.includes("i2v");
    image = takesImage ? (modes.includes("t2v") ? "optional" : "required") : "none";
  }
  const promptRequired = c.prompt_required ?? model.prompt_required;
  return {
    id: model.id,
    label: model.label || model.name || model.id,
    namespace: model.namespace || "native",
    vendor: model.owned_by || "",
    description: model.description || "",
    modes,
    modeLabels: modes.map((mode) => MODE_LABELS[mode] || mode),
    orderable: model.orderable !== false,
    availableLive: Boolean(model.available_live),
    reason: model.unavailable_reason || null,
    durations: listOf(c, "duration", "durations").filter((d) => typeof d === "number"),
    resolutions: listOf(c, "resolution", "resolutions").map(String),
    aspectRatios: listOf(c, "aspect_ratio", "aspect_ratios").map(String),
    audio: audioSupport(c.audio ?? model.audio),
    image,
    promptMax: firstNumber(c.prompt_max, c.prompt, model.prompt_max) ?? DEFAULT_PROMPT_MAX,
    promptRequired: promptRequired === undefined ? true : Boolean(Array.isArray(promptRequired) ? promptRequired[0] : promptRequired),
    options,
    raw: model,
  };
}

/** Whether this key may order the model now, and if not, why. */
export function availability(spec, mode) {
  if (!spec.orderable) return { ok: false, reason: spec.reason || "not available" };
  if (mode === "live" && !spec.availableLive) return { ok: false, reason: spec.reason || "no upstream is configured for it" };
  return { ok: true, reason: null };
}

/** A sensible first pick among allowed values (the server's own default replaces it). */
export function preferred(values, ...wishes) {
  for (const wish of wishes) if (values.includes(wish)) return wish;
  return values.length ? values[0] : null;
}

export function namespaceLabel(namespace) {
  const names = { thalam: "Thalam", venice: "Venice", minimax: "MiniMax", apiframe: "Apiframe", kyma: "Kyma", native: "vidgate" };
  return names[namespace] || namespace;
}
