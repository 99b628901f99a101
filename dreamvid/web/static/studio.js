// dreamvid studio: the page. Plain JS, no build step, nothing fetched from outside this server.
// Every field, range and help line comes from GET /api/options (the library's parameter catalogue);
// the server is the one judge of a value, and its message is shown beside the field it names.
"use strict";

const $ = (sel, el = document) => el.querySelector(sel);
const $$ = (sel, el = document) => [...el.querySelectorAll(sel)];
const state = {
  options: null, mode: "image", preset: "", upload: null, defaults: {}, layersTouched: false,
  cards: new Map(), version: 0, submitKey: null, submitting: false, busy: false,
};
const FAST = 700, SLOW = 4000;  // ms between gallery polls while a job runs / otherwise

async function api(path, init = {}) {
  const r = await fetch(path, { credentials: "same-origin", ...init });
  const json = (r.headers.get("content-type") || "").includes("json") ? await r.json() : null;
  if (!r.ok) {
    const e = new Error(json && json.error ? words(json.error, json.hint) : `${r.status} ${r.statusText}`);
    e.field = json && json.field;
    e.status = r.status;
    throw e;
  }
  return json;
}

// A message and its way out as two sentences: "max_size 32 makes ... side. Give max_size at least 48."
function words(message, hint) {
  const sentence = (t) => (t.endsWith(".") || t.endsWith("?") ? t : t + ".");
  return sentence(message) + (hint ? " " + sentence(hint[0].toUpperCase() + hint.slice(1)) : "");
}

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "data") Object.assign(e.dataset, v); else if (k === "cls") e.className = v; else e[k] = v;
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function randomKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return btoa(String.fromCharCode(...bytes)).replace(/[+/=]/g, (c) => ({ "+": "-", "/": "_", "=": "" }[c]));
}

// ---- the form ---------------------------------------------------------------------------

async function init() {
  state.options = await api("/api/options");
  banner();
  for (const m of state.options.modes) {
    const b = el("button", { type: "button", cls: "mode", role: "radio", data: { mode: m.name } },
      el("strong", { textContent: m.label }), el("small", { textContent: m.about }));
    b.addEventListener("click", () => setMode(m.name));
    $("#modes").append(b);
  }
  for (const m of state.options.models) {
    $("#model").append(el("option", { value: m.name, textContent: m.name + (m.ready ? "" : " (downloads once)") }));
  }
  $("#model").addEventListener("change", () => { state.layersTouched = false; modelHelp(); loadLayers(); });
  $("#file").addEventListener("change", (e) => e.target.files[0] && upload(e.target.files[0]));
  const drop = $("#drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault(); drop.classList.remove("over");
    if (e.dataTransfer.files[0]) upload(e.dataTransfer.files[0]);
  });
  $("#new").addEventListener("submit", (e) => { e.preventDefault(); dream(); });
  $("#new").addEventListener("input", (e) => {
    state.submitKey = null;  // a changed form is a new request
    const f = e.target.closest(".field");
    if (f) showFieldError(f.dataset.name, null);
  });
  const l = state.options.limits;
  $("#drop-limits").textContent = `Photos and clips up to ${l.max_upload_mb} MB, ${l.max_pixels / 1e6} megapixels a picture.`;
  await setMode(state.mode);
  poll();
}

function banner() {
  const a = state.options.access;
  $("#access").textContent = a.mode === "token"
    ? "Shared on your network: any device with the link (it carries the token) can open this studio. " +
      "Photos and dreams stay on the computer that runs it."
    : "Only this computer can open this studio. Photos and dreams stay in its data folder.";
  $("#access").dataset.mode = a.mode;
}

async function setMode(mode) {
  state.mode = mode;
  for (const b of $$("#modes .mode")) b.setAttribute("aria-checked", String(b.dataset.mode === mode));
  const m = modeOf(mode);
  $("#format").replaceChildren(...m.formats.map((f) => el("option", { value: f, textContent: f })));
  if (!presetsFor(mode).some((p) => p.name === state.preset)) state.preset = "";
  buildPresets();
  buildFields();
  await refreshDefaults();
  checkReady();
}

function modeOf(name) { return state.options.modes.find((x) => x.name === name); }

// Presets named after another mode (video, video-draft, zoom) belong to that mode.
function presetsFor(mode) {
  const modes = state.options.modes.map((m) => m.name);
  return state.options.presets.filter((p) => { const k = p.name.split("-")[0]; return !modes.includes(k) || k === mode; });
}

function buildPresets() {
  const own = modeOf(state.mode).preset || "classic";  // the preset the mode starts from (presets.MODE_PRESET)
  const ownCard = state.options.presets.find((p) => p.name === own);
  const cards = [{ name: "", title: "Default", description: ownCard ? `${ownCard.name}: ${ownCard.description}` : "",
    picture: ownCard && ownCard.picture },
  ...presetsFor(state.mode).filter((p) => p.name !== own).map((p) => ({ ...p, title: p.name }))];
  $("#presets").replaceChildren(...cards.map((p) => {
    const pic = p.picture ? el("img", { src: p.picture, alt: "", loading: "lazy" })
      : el("span", { cls: "no-picture", textContent: p.model && !modelReady(p.model) ? "downloads its network once" : "" });
    const b = el("button", { type: "button", cls: "preset", role: "radio", title: p.description, data: { preset: p.name } },
      pic, el("strong", { textContent: p.title }), el("small", { textContent: p.description }));
    b.setAttribute("aria-checked", String(p.name === state.preset));
    b.addEventListener("click", () => choosePreset(p.name));
    return b;
  }));
}

function modelReady(name) {
  const m = state.options.models.find((x) => x.name === name);
  return !m || m.ready;
}

async function choosePreset(name) {
  state.preset = name;
  state.submitKey = null;
  for (const b of $$("#presets .preset")) b.setAttribute("aria-checked", String(b.dataset.preset === name));
  await refreshDefaults();
}

function buildFields() {
  const params = modeOf(state.mode).params;
  const make = (p) => field(p);
  $("#essentials").replaceChildren(...params.filter((p) => p.essential).map(make));
  $("#advanced-fields").replaceChildren(...params.filter((p) => !p.essential).map(make));
}

function field(p) {
  let input;
  const id = `f-${p.name}`;
  if (p.kind === "choice" || p.kind === "bool") {
    const values = p.kind === "bool" ? ["true", "false"] : p.choices;
    input = el("select", { id }, el("option", { value: "", textContent: "(the look's)" }),
      ...values.map((v) => el("option", { value: v, textContent: p.kind === "bool" ? (v === "true" ? "yes" : "no") : v })));
  } else if (p.kind === "lines") {
    input = el("textarea", { id, rows: 2, spellcheck: false });
  } else if ((p.kind === "int" || p.kind === "float") && !p.expression.includes(state.mode)) {
    input = el("input", { id, type: "number", step: p.kind === "int" ? "1" : "any", inputMode: "decimal" });
    if (p.lo !== null && !p.lo_open) input.min = p.lo;
    if (p.hi !== null) input.max = p.hi;
  } else {
    input = el("input", { id, type: "text", spellcheck: false });
  }
  input.name = p.name;
  input.dataset.kind = p.kind;
  const range = p.range ? ` Range: ${p.range}.` : "";
  return el("div", { cls: "field" + (p.kind === "lines" ? " wide" : ""), data: { name: p.name, none: p.none || "" } },
    el("label", { htmlFor: id }, p.label + " ", el("code", { textContent: p.name })),
    input,
    el("p", { cls: "help" }, p.help + range, el("span", { cls: "empty" })),
    el("p", { cls: "field-error error", role: "alert", data: { for: p.name } }));
}

async function refreshDefaults() {
  const q = new URLSearchParams({ mode: state.mode });
  if (state.preset) q.set("preset", state.preset);
  try {
    state.defaults = await api("/api/defaults?" + q);
  } catch (e) { $("#preset-error").textContent = e.message; return; }
  for (const input of $$("#new .field [name]")) {
    const v = state.defaults[input.name];
    const shown = v === null || v === undefined ? "" : String(v);
    if (input.tagName === "SELECT") input.options[0].textContent = shown ? `(the look's: ${shown})` : "(the look's)";
    else input.placeholder = shown;
    const f = input.closest(".field"), empty = $(".empty", f);  // what an empty field means when the look sets nothing
    if (empty) empty.textContent = !shown && f.dataset.none ? ` Empty: ${f.dataset.none}.` : "";
  }
  if ($("#model").value !== state.defaults.model && state.options.models.some((m) => m.name === state.defaults.model)) {
    $("#model").value = state.defaults.model;
  }
  modelHelp();
  state.layersTouched = false;
  await loadLayers();
}

function modelHelp() {
  const m = state.options.models.find((x) => x.name === $("#model").value);
  $("#model-help").textContent = m ? m.look : "";
}

async function loadLayers() {
  const model = $("#model").value;
  $("#layers-note").textContent = "(reading the network...)";
  let layers;
  try {
    layers = await api(`/api/models/${encodeURIComponent(model)}/layers`);
  } catch (e) { $("#layers-note").textContent = ""; showFieldError("layers", e.message); return; }
  if ($("#model").value !== model) return;  // changed again meanwhile
  const preset = model === state.defaults.model ? state.defaults.layers || {} : {};
  const usePreset = Object.keys(preset).length > 0;
  const short = [], rest = [];
  for (const layer of layers) {
    const on = usePreset ? layer.name in preset : layer.default;
    const check = el("input", { type: "checkbox", checked: on, value: layer.name });
    const weight = el("input", { type: "number", step: "any", value: usePreset && on ? preset[layer.name] : 1,
      title: "weight (negative: suppress)", ariaLabel: `weight of ${layer.name}` });
    for (const i of [check, weight]) i.addEventListener("change", () => { state.layersTouched = true; state.submitKey = null; });
    const words = [layer.words, layer.default ? "the network's default" : null].filter(Boolean).join(" \u00b7 ");
    const row = el("label", { cls: "layer", title: layer.shape.join(" x ") }, check,
      el("span", { textContent: layer.name }), words ? el("small", { textContent: words }) : null, weight);
    (layer.short || on ? short : rest).push(row);
  }
  $("#layers-short").replaceChildren(...short);
  $("#layers-all").replaceChildren(...rest);
  $("#layers-note").textContent = "(shallow to deep; the weight is how strongly)";
}

function chosenLayers() {
  const modelChanged = $("#model").value !== state.defaults.model;
  if (!state.layersTouched && !modelChanged) return null;  // the look's (or the model's) own layers
  const out = {};
  for (const row of $$("#layers-box .layer")) {
    const [check, weight] = row.querySelectorAll("input");
    if (check.checked) out[check.value] = weight.value.trim() === "" ? 1 : weight.value.trim();
  }
  return Object.keys(out).length ? out : null;
}

function chosenParams() {
  const out = {};
  for (const input of $$("#new .field [name]")) {
    if (input.validity && input.validity.badInput) {
      throw fieldError(input.name, `${input.name} must be a number`);
    }
    const v = input.value.trim();
    if (v !== "") out[input.name] = input.dataset.kind === "bool" ? v === "true" : v;  // text: the server parses it
  }
  return out;
}

function fieldError(name, message) { const e = new Error(message); e.field = name; return e; }

// ---- the upload ---------------------------------------------------------------------------

async function upload(file) {
  showUploadError(null);
  state.upload = null;
  checkReady();
  const thumb = $("#thumb");
  thumb.hidden = true;
  $("#drop-text").textContent = `Uploading ${file.name}...`;
  $("#drop").classList.add("busy");
  try {
    state.upload = await api("/api/uploads", { method: "POST", body: file,
      headers: { "X-Filename": encodeURIComponent(file.name), "Content-Type": "application/octet-stream" } });
  } catch (e) {
    clearDrop();
    showUploadError(e.message);  // the server's words name the file
    return;
  } finally { $("#drop").classList.remove("busy"); }
  await showUpload();
}

async function showUpload() {
  const u = state.upload;
  state.submitKey = null;
  const thumb = $("#thumb");
  thumb.onload = () => { thumb.hidden = false; };
  thumb.onerror = () => { thumb.hidden = true; };
  thumb.src = `/api/uploads/${u.upload}/poster`;
  thumb.alt = u.name;
  $("#drop-text").textContent = `${u.name}: ${u.width}x${u.height}` + (u.kind === "video" ? `, ${u.frames} frames` : "") +
    " (click or drop to change)";
  const wanted = u.kind === "video" ? "video" : state.mode === "video" ? "image" : state.mode;
  if (wanted !== state.mode) await setMode(wanted);
  checkReady();
}

function clearDrop() {  // a refused file must not look accepted
  state.upload = null;
  $("#file").value = "";
  $("#thumb").hidden = true;
  $("#thumb").removeAttribute("src");
  $("#drop-text").textContent = "Drop a photo or a clip here, or click to choose one";
  checkReady();
}

function showUploadError(text) {
  const p = $("#upload-error");
  p.textContent = text || "";
  if (text) p.scrollIntoView({ block: "nearest" });
}

function checkReady() {
  const m = modeOf(state.mode);
  const ok = state.upload && state.upload.kind === m.accepts;
  $("#dream").disabled = !ok || state.submitting;
  $("#dream").textContent = state.submitting ? "Sending..." : !state.upload ? "Dream (choose a photo first)"
    : ok ? "Dream" : `Dream (a ${m.label.toLowerCase()} needs a ${m.accepts === "video" ? "clip" : "photo"})`;
}

// ---- sending a job ----------------------------------------------------------------------

async function dream() {
  if (state.submitting || !state.upload) return;  // a double click sends once
  clearErrors();
  let body;
  try {
    body = { upload: state.upload.upload, mode: state.mode, format: $("#format").value,
      params: chosenParams(), layers: chosenLayers() };
  } catch (e) { showError(e); return; }
  if (state.preset) body.preset = state.preset;
  if ($("#model").value !== state.defaults.model) body.model = $("#model").value;
  if ($("#toml").value.trim()) body.toml = $("#toml").value;
  state.submitKey = state.submitKey || randomKey();  // the same key on a retry: the server makes one job
  state.submitting = true;
  checkReady();
  try {
    const job = await api("/api/jobs", { method: "POST", body: JSON.stringify(body),
      headers: { "Content-Type": "application/json", "Idempotency-Key": state.submitKey } });
    state.submitKey = null;
    const card = merge([job]);
    showNew(card[0], job);
  } catch (e) { showError(e); } finally {
    state.submitting = false;
    checkReady();
  }
  poll();
}

function showNew(card, job) {
  $("#form-note").textContent = `Dreaming ${job.source}: its card is first in "Your dreams".`;
  card.classList.add("fresh");
  setTimeout(() => card.classList.remove("fresh"), 2500);
  const narrow = window.matchMedia("(max-width: 900px)").matches;  // one column: the gallery is below the form
  (narrow ? $("#side") : card).scrollIntoView({ behavior: "smooth", block: narrow ? "start" : "nearest" });
  card.focus({ preventScroll: true });
}

function clearErrors() {
  for (const p of $$("#new .field-error")) p.textContent = "";
  $("#form-error").textContent = "";
  $("#form-note").textContent = "";
}

function showError(e) {
  const name = e.field;
  if (name === "upload") { clearDrop(); showUploadError(e.message); return; }
  if (name === "mode") { $("#form-error").textContent = e.message; return; }
  if (name && showFieldError(name, e.message)) return;
  $("#form-error").textContent = e.message;
  $("#form-error").scrollIntoView({ block: "nearest" });
}

function showFieldError(name, text) {
  const p = $(`#new .field-error[data-for="${CSS.escape(name)}"]`);
  if (!p) return false;
  p.textContent = text || "";
  if (!text) return true;
  const details = p.closest("details");
  if (details) details.open = true;
  const input = p.parentElement.querySelector("input, select, textarea");
  p.scrollIntoView({ block: "center" });
  if (input) input.focus({ preventScroll: true });
  return true;
}

// ---- the gallery: changes since the last version ------------------------------------------

let timer = null;
async function poll() {
  clearTimeout(timer);
  try {
    const changes = await api(`/api/jobs?since=${state.version}`);
    if (changes.reset) { for (const c of state.cards.values()) c.remove(); state.cards.clear(); }
    for (const id of changes.removed) drop(id);
    merge(changes.jobs);
    state.version = changes.version;
    state.busy = [...state.cards.values()].some((c) => c.dataset.status === "queued" || c.dataset.status === "running");
    if ($("#access").dataset.lost) { banner(); delete $("#access").dataset.lost; }
  } catch (e) {
    $("#access").textContent = "The studio does not answer: " + e.message;
    $("#access").dataset.lost = "1";
  }
  timer = setTimeout(poll, state.busy ? FAST : SLOW);
}

function merge(jobs) {
  const cards = jobs.map((job) => {
    let card = state.cards.get(job.id);
    if (!card) card = newCard(job);
    update(card, job);
    return card;
  });
  const gallery = $("#gallery");
  const order = [...state.cards.values()].sort((a, b) => Number(b.dataset.created) - Number(a.dataset.created));
  order.forEach((card, i) => { if (gallery.children[i] !== card) gallery.insertBefore(card, gallery.children[i] || null); });
  $("#gallery-empty").hidden = state.cards.size > 0;
  return cards;
}

function drop(id) {
  const card = state.cards.get(id);
  if (card) card.remove();
  state.cards.delete(id);
  $("#gallery-empty").hidden = state.cards.size > 0;
}

function newCard(job) {
  const card = $("#job-card").content.firstElementChild.cloneNode(true);
  card.dataset.id = job.id;
  card.dataset.created = job.created;
  $(".cancel", card).addEventListener("click", () => act(job.id, "cancel"));
  $(".resume", card).addEventListener("click", () => act(job.id, "resume"));
  $(".delete", card).addEventListener("click", () => remove(job.id));
  $(".reuse", card).addEventListener("click", () => reuse(card.job));
  $(".split", card).addEventListener("input", (e) => split(card, e.target.value));
  for (const b of $$(".copy", card)) b.addEventListener("click", () => copy($("pre", b.parentNode)));
  state.cards.set(job.id, card);
  return card;
}

function update(card, job) {
  const p = job.progress || {};
  card.job = job;
  card.dataset.status = job.status;
  $(".name", card).textContent = `${job.source} \u2192 ${modeOf(job.mode).label.toLowerCase()}`;
  $(".badge", card).textContent = job.status;
  const fraction = job.status === "done" ? 1 : p.fraction || 0;
  $(".fill", card).style.width = `${Math.round(fraction * 100)}%`;
  $(".bar", card).hidden = job.status === "done";
  $(".info", card).textContent = info(job, p);
  $(".error", card).textContent = job.error ? words(job.error, job.hint) : "";
  const active = job.status === "queued" || job.status === "running";
  $(".cancel", card).hidden = !active;
  $(".resume", card).hidden = !(job.status === "cancelled" || (job.status === "failed" && job.resumable));
  const files = `/api/jobs/${job.id}/files`;
  const dl = $(".download", card);
  dl.hidden = job.status !== "done";
  dl.href = `${files}/output?download=1`;
  $(".toml pre", card).textContent = job.settings_toml;
  $(".cli pre", card).textContent = job.command;
  pictures(card, job, p, files);
}

function pictures(card, job, p, files) {
  const compare = $(".compare", card), img = $("img.result", card), video = $("video.result-video", card);
  const done = job.status === "done";
  if (done && !job.clip && job.mode !== "sweep" && job.mode !== "timelapse") {  // a still: before and after
    setSrc($(".before", compare), `${files}/before`);
    setSrc($(".after", compare), `${files}/output?v=${job.finished}`, () => { compare.hidden = false; split(card, $(".split", card).value); });
    img.hidden = true; video.hidden = true;
  } else if (done && job.clip) {  // a clip: its poster frame until played
    video.poster = `${files}/poster?v=${job.finished}`;
    setSrc(video, `${files}/output?v=${job.finished}`);
    video.hidden = false; img.hidden = true; compare.hidden = true;
  } else if (done) {  // a grid or a contact sheet: the picture itself
    setSrc(img, `${files}/output?v=${job.finished}`);
    compare.hidden = true; video.hidden = true;
  } else if (p.preview > 0) {  // while it dreams: the newest octave or frame
    setSrc(img, `${files}/preview?v=${p.preview}`);
  } else if (!img.dataset.src) {  // before anything is made: the input
    setSrc(img, `${files}/${job.clip && job.mode === "video" ? "poster" : "before"}`);
  }
}

function split(card, value) {
  $(".after", card).style.clipPath = `inset(0 0 0 ${value}%)`;
}

function setSrc(media, src, loaded) {
  if (media.dataset.src === src) return;
  media.dataset.src = src;
  if (media.tagName === "VIDEO") { media.src = src; return; }
  media.onload = () => { media.hidden = false; if (loaded) loaded(); };
  media.onerror = () => { media.hidden = true; };
  media.src = src;
}

function info(job, p) {
  if (job.status === "done" && job.result) {
    const r = job.result;
    return `${r.rendered} of ${r.items} made in ${r.seconds.toFixed(1)} s` + (r.resumed_from !== null ? ` (resumed at ${r.resumed_from})` : "");
  }
  if (job.status === "queued") return job.runs ? "waiting to resume" : "waiting for its turn";
  if (job.status === "failed") return job.resumable ? "stopped: Resume tries again from what was finished" : "refused: change the settings and Dream again";
  if (job.status === "cancelled") return "cancelled: finished frames are kept; Resume continues";
  if (job.status !== "running") return "";
  const eta = p.eta === null || p.eta === undefined ? "" : `, about ${clock(p.eta)} left`;
  const count = p.total_steps ? `${p.steps}/${p.total_steps} steps` : p.total ? `${p.done}/${p.total}` : "";
  return [count, p.info].filter(Boolean).join(" \u00b7 ") + eta;
}

function clock(s) {
  s = Math.round(s);
  return s >= 60 ? `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}` : `${s} s`;
}

async function act(id, what) {
  try { merge([await api(`/api/jobs/${id}/${what}`, { method: "POST" })]); } catch (e) { showError(e); }
  poll();
}

async function remove(id) {
  try { await api(`/api/jobs/${id}`, { method: "DELETE" }); drop(id); } catch (e) { showError(e); }
  poll();
}

// "Reuse these settings": the job's mode, look, network, layers and values back in the form
// (and its photo, when none is chosen).
async function reuse(job) {
  const r = job.request;
  clearErrors();
  try {
    if (!state.upload || modeOf(r.mode).accepts !== state.upload.kind) {
      state.upload = await api(`/api/jobs/${job.id}/reuse`, { method: "POST" });
      await showUpload();
    }
  } catch (e) { showUploadError(e.message); }
  state.preset = r.preset || "";
  await setMode(r.mode);
  if (r.model) { $("#model").value = r.model; modelHelp(); await loadLayers(); }
  if (r.layers) {
    for (const row of $$("#layers-box .layer")) {
      const [check, weight] = row.querySelectorAll("input");
      check.checked = check.value in r.layers;
      if (check.checked) weight.value = r.layers[check.value];
    }
    state.layersTouched = true;
  }
  for (const input of $$("#new .field [name]")) {
    const v = r.params[input.name];
    input.value = v === undefined ? "" : String(v);
  }
  $("#toml").value = r.toml ? job.settings_toml : "";
  $("#format").value = r.format;
  state.submitKey = null;
  $("#form-note").textContent = `The settings of ${job.source} are in the form: change what you like and Dream.`;
  $("#new").scrollIntoView({ behavior: "smooth", block: "start" });
}

function copy(pre) {
  const text = pre.textContent;
  if (navigator.clipboard && window.isSecureContext) { navigator.clipboard.writeText(text); return; }
  const range = document.createRange();  // plain http on a LAN address: no clipboard API
  range.selectNodeContents(pre);
  const sel = window.getSelection();
  sel.removeAllRanges(); sel.addRange(range);
  document.execCommand("copy");
}

init().catch((e) => { $("#form-error").textContent = String(e.message || e); });
