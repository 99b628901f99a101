// dreamvid studio: the page. Plain JS, no build step, nothing fetched from outside this server.
"use strict";

const $ = (sel, el = document) => el.querySelector(sel);
const state = { options: null, upload: null, mode: "image", defaults: {}, layersTouched: false, cards: new Map() };
const IMAGE_EXT = /\.(png|jpe?g|webp|gif)$/i;

async function api(path, init = {}) {
  const r = await fetch(path, { credentials: "same-origin", ...init });
  const json = (r.headers.get("content-type") || "").includes("json") ? await r.json() : null;
  if (!r.ok) {
    const why = json && json.error ? json.error + (json.hint ? ". " + json.hint : "") : `${r.status} ${r.statusText}`;
    throw new Error(why);
  }
  return json;
}

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  Object.assign(e, props);
  for (const c of children) e.append(c);
  return e;
}

// ---- the form ---------------------------------------------------------------------------

async function init() {
  state.options = await api("/api/options");
  const modes = $("#modes");
  for (const m of state.options.modes) {
    const radio = el("input", { type: "radio", name: "mode", value: m.name, checked: m.name === state.mode });
    radio.addEventListener("change", () => setMode(m.name));
    modes.append(el("label", {}, radio, " " + m.label));
  }
  for (const p of state.options.presets) $("#preset").append(el("option", { value: p.name, textContent: p.name }));
  for (const m of state.options.models) {
    $("#model").append(el("option", { value: m.name, textContent: m.name + (m.ready ? "" : " (downloads)"), title: m.look }));
  }
  $("#preset").addEventListener("change", () => refreshDefaults());
  $("#model").addEventListener("change", () => { state.layersTouched = false; loadLayers(); });
  $("#file").addEventListener("change", (e) => e.target.files[0] && upload(e.target.files[0]));
  const drop = $("#drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault(); drop.classList.remove("over");
    if (e.dataTransfer.files[0]) upload(e.dataTransfer.files[0]);
  });
  $("#new").addEventListener("submit", (e) => { e.preventDefault(); dream(); });
  const limits = state.options.limits;
  $("#status").textContent = `Everything stays on this machine. Uploads up to ${limits.max_upload_mb} MB, ` +
    `${limits.max_pixels / 1e6} MP a picture.`;
  await setMode(state.mode);
  poll();
}

async function setMode(mode) {
  state.mode = mode;
  const m = state.options.modes.find((x) => x.name === mode);
  const fmt = $("#format");
  fmt.replaceChildren(...m.formats.map((f) => el("option", { value: f, textContent: f })));
  buildParams();
  await refreshDefaults();
  checkReady();
}

function buildParams() {
  const box = $("#params");
  box.replaceChildren();
  for (const p of state.options.params.filter((x) => x.modes.includes(state.mode))) {
    const range = p.min !== null ? ` (${p.min} .. ${p.max})` : "";
    let input;
    if (p.kind === "choice" || p.kind === "bool") {
      const values = p.kind === "bool" ? ["true", "false"] : p.choices;
      input = el("select", {}, el("option", { value: "", textContent: "(preset)" }),
        ...values.map((v) => el("option", { value: v, textContent: v })));
    } else if (p.name === "vary" || p.name === "classes") {
      input = el("textarea", { rows: 2 });
    } else {
      input = el("input", p.kind === "text" ? { type: "text" } : { type: "number", step: "any" });
      if (p.min !== null) { input.min = p.min; input.max = p.max; }
    }
    input.name = p.name;
    input.dataset.kind = p.kind;
    box.append(el("label", { title: p.help + range }, p.name, input));
  }
}

async function refreshDefaults() {
  const preset = $("#preset").value;
  const q = new URLSearchParams({ mode: state.mode });
  if (preset) q.set("preset", preset);
  try {
    state.defaults = await api("/api/defaults?" + q);
  } catch (e) { showError(e); return; }
  for (const input of $("#params").querySelectorAll("[name]")) {
    const v = state.defaults[input.name];
    const shown = v === null || v === undefined ? "" : String(v);
    if (input.tagName === "SELECT") input.options[0].textContent = shown ? `(preset: ${shown})` : "(preset)";
    else input.placeholder = shown;
  }
  const about = state.options.presets.find((p) => p.name === preset);
  $("#preset-about").textContent = about ? about.description : "";
  if ($("#model").value !== state.defaults.model) $("#model").value = state.defaults.model;
  state.layersTouched = false;
  await loadLayers();
}

async function loadLayers() {
  const model = $("#model").value;
  const box = $("#layers");
  $("#layers-note").textContent = "(reading the model...)";
  let layers;
  try {
    layers = await api(`/api/models/${encodeURIComponent(model)}/layers`);
  } catch (e) { $("#layers-note").textContent = ""; showError(e); return; }
  if ($("#model").value !== model) return;  // changed again meanwhile
  const preset = model === state.defaults.model ? state.defaults.layers || {} : {};
  const usePreset = Object.keys(preset).length > 0;
  box.replaceChildren();
  for (const layer of layers) {
    const on = usePreset ? layer.name in preset : layer.default;
    const check = el("input", { type: "checkbox", checked: on, value: layer.name });
    const weight = el("input", { type: "number", step: "any", value: usePreset && on ? preset[layer.name] : 1 });
    for (const i of [check, weight]) i.addEventListener("change", () => { state.layersTouched = true; });
    box.append(el("label", { title: layer.shape.join(" x ") }, check, layer.name + (layer.default ? " *" : ""), weight));
  }
  $("#layers-note").textContent = "(checked: dreamed on, with its weight; * defaults of the model)";
}

function chosenLayers() {
  const modelChanged = $("#model").value !== state.defaults.model;
  if (!state.layersTouched && !modelChanged) return null;  // the preset's (or model's) own layers
  const out = {};
  for (const label of $("#layers").children) {
    const [check, weight] = label.querySelectorAll("input");
    if (check.checked) out[check.value] = Number(weight.value || 1);
  }
  return Object.keys(out).length ? out : null;
}

function chosenParams() {
  const out = {};
  for (const input of $("#params").querySelectorAll("[name]")) {
    const v = input.value.trim();
    if (v === "") continue;
    const kind = input.dataset.kind;
    out[input.name] = kind === "bool" ? v === "true" : kind === "int" || kind === "float" ? Number(v) : v;
  }
  return out;
}

async function upload(file) {
  showError(null);
  $("#dream").disabled = true;
  const thumb = $("#thumb");
  if (file.type.startsWith("image/")) { thumb.src = URL.createObjectURL(file); thumb.hidden = false; } else thumb.hidden = true;
  $("#drop-text").textContent = `Uploading ${file.name}...`;
  try {
    state.upload = await api("/api/uploads", { method: "POST", body: file,
      headers: { "X-Filename": encodeURIComponent(file.name), "Content-Type": "application/octet-stream" } });
  } catch (e) {
    state.upload = null;
    $("#drop-text").textContent = "Drop a photo or a clip here, or click to choose one";
    showError(e);
    return;
  }
  const u = state.upload;
  $("#drop-text").textContent = `${u.name}: ${u.width}x${u.height}` + (u.kind === "video" ? `, ${u.frames} frames` : "");
  const wanted = u.kind === "video" ? "video" : state.mode === "video" ? "image" : state.mode;
  if (wanted !== state.mode) {
    document.querySelector(`input[name=mode][value=${wanted}]`).checked = true;
    await setMode(wanted);
  }
  checkReady();
}

function checkReady() {
  const m = state.options.modes.find((x) => x.name === state.mode);
  $("#dream").disabled = !state.upload || state.upload.kind !== m.accepts;
}

async function dream() {
  showError(null);
  const body = { upload: state.upload.upload, mode: state.mode, format: $("#format").value,
    params: chosenParams(), layers: chosenLayers() };
  if ($("#preset").value) body.preset = $("#preset").value;
  if ($("#model").value !== state.defaults.model) body.model = $("#model").value;
  if ($("#toml").value.trim()) body.toml = $("#toml").value;
  try {
    const job = await api("/api/jobs", { method: "POST", body: JSON.stringify(body),
      headers: { "Content-Type": "application/json" } });
    render([job], false);
  } catch (e) { showError(e); }
  poll();
}

function showError(e) {
  $("#form-error").textContent = e ? String(e.message || e) : "";
}

// ---- the gallery --------------------------------------------------------------------------

let timer = null;
async function poll() {
  clearTimeout(timer);
  let jobs = [];
  try {
    jobs = await api("/api/jobs");
    render(jobs, true);
  } catch (e) { $("#status").textContent = "The studio does not answer: " + e.message; }
  const busy = jobs.some((j) => j.status === "queued" || j.status === "running");
  timer = setTimeout(poll, busy ? 700 : 4000);
}

function render(jobs, complete) {
  const gallery = $("#gallery");
  for (const job of jobs) {
    let card = state.cards.get(job.id);
    if (!card) {
      card = $("#job-card").content.firstElementChild.cloneNode(true);
      card.dataset.id = job.id;
      $(".cancel", card).addEventListener("click", () => act(job.id, "cancel"));
      $(".resume", card).addEventListener("click", () => act(job.id, "resume"));
      for (const b of card.querySelectorAll(".copy")) b.addEventListener("click", () => copy($("pre", b.parentNode)));
      state.cards.set(job.id, card);
    }
    update(card, job);
  }
  if (complete) gallery.replaceChildren(...jobs.map((j) => state.cards.get(j.id)));
  else for (const j of jobs) if (!state.cards.get(j.id).isConnected) gallery.prepend(state.cards.get(j.id));
}

function update(card, job) {
  const p = job.progress || {};
  card.dataset.status = job.status;
  $(".name", card).textContent = `${job.source} \u2192 ${job.mode}`;
  $(".badge", card).textContent = job.status;
  const fraction = job.status === "done" ? 1 : p.fraction || 0;
  $(".fill", card).style.width = `${Math.round(fraction * 100)}%`;
  $(".info", card).textContent = info(job, p);
  $(".error", card).textContent = job.error ? job.error + (job.hint ? ". " + job.hint : "") : "";
  $(".cancel", card).hidden = !(job.status === "queued" || job.status === "running");
  $(".resume", card).hidden = !(job.status === "cancelled" || job.status === "failed");
  const files = `/api/jobs/${job.id}/files`;
  const dl = $(".download", card);
  dl.hidden = job.status !== "done";
  dl.href = `${files}/output?download=1`;
  $(".toml pre", card).textContent = job.settings_toml;
  $(".cli pre", card).textContent = job.command;
  const img = $("img.result", card), video = $("video.result-video", card);
  if (job.status === "done") {
    const src = `${files}/output?v=${job.finished}`;
    const still = IMAGE_EXT.test(job.output);
    setSrc(still ? img : video, src);
    img.hidden = !still; video.hidden = still;
  } else if (p.preview > 0 || (job.status !== "queued" && job.status !== "running" && job.runs > 0)) {
    setSrc(img, `${files}/preview?v=${p.preview || 0}`);
    video.hidden = true;
  }
}

function setSrc(media, src) {
  if (media.dataset.src === src) return;
  media.dataset.src = src;
  media.onload = media.onloadeddata = () => { media.hidden = false; };
  media.onerror = () => { media.hidden = true; };
  media.src = src;
}

function info(job, p) {
  if (job.status === "done" && job.result) {
    const r = job.result;
    return `${r.rendered} of ${r.items} made in ${r.seconds.toFixed(1)} s` + (r.resumed_from !== null ? ` (resumed at ${r.resumed_from})` : "");
  }
  if (job.status === "queued") return job.runs ? "waiting to resume" : "waiting for the job before it";
  if (job.status !== "running") return p.info || "";
  const eta = p.eta === null || p.eta === undefined ? "" : `, ETA ${clock(p.eta)}`;
  const count = p.total_steps ? `${p.steps}/${p.total_steps} steps` : p.total ? `${p.done}/${p.total}` : "";
  return [count, p.info].filter(Boolean).join(" \u00b7 ") + eta;
}

function clock(s) {
  s = Math.round(s);
  return s >= 60 ? `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}` : `${s} s`;
}

async function act(id, what) {
  try { render([await api(`/api/jobs/${id}/${what}`, { method: "POST" })], false); } catch (e) { showError(e); }
  poll();
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

init().catch((e) => showError(e));
