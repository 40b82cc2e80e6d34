// The clerk's screen: sign in, receive a resident, walk the six steps, watch the timeline.

import {
  ApiError, NetworkError, api, applyI18n, fmtDate, fmtDateTime, h, initLang, lang,
  newKey, onLangChange, session, t, toast,
} from "/ui/shared/ui.js";
import { currentSession, setupSignIn, showSignIn, signOut as signOutEverywhere } from "/ui/shared/signin.js";
import { StepQueue } from "/ui/intake/queue.js";

const CURRENT_KEY = "sixstep.counter.current.v1";
const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ID_NUMBER_RE = /^\d{17}[\dXx]$/;
const UPSET = ["upset", "angry", "distressed"];
// Which event answers which step, for the cards' "saved" marks and the stepper.
const EVENT_OF = {
  open: "CaseOpened", hear: "RequestHeard", restate: "RequestRestated", concerns: "ConcernsNoted",
  guidance: "GuidanceGiven", actions: "ActionTaken", deadlines: "DeadlineNoted", resolve: "CaseResolved",
};

const queue = new StepQueue();
const catalogue = new Map(); // code -> item
let current = readCurrent(); // {ref, item, channel, resident_id, opened_at}
let caseView = null; // GET /cases/{id}
let picked = null; // the catalogue item chosen for the next case
let resident = null; // {resident_id, cases: [...]}

// -- helpers ------------------------------------------------------------------------------------

function readCurrent() {
  try { return JSON.parse(localStorage.getItem(CURRENT_KEY)); } catch { return null; }
}

function saveCurrent() {
  if (current) localStorage.setItem(CURRENT_KEY, JSON.stringify(current));
  else localStorage.removeItem(CURRENT_KEY);
}

const name = (item) => (item ? (lang() === "zh" ? item.name_zh : item.name_en) : "");
const words = (pair) => (pair ? (lang() === "zh" ? pair.zh : pair.en) : "");
const lines = (text) => text.split(/\n|；|;/).map((s) => s.trim()).filter(Boolean);
const now = () => new Date().toISOString();

function formValue(form, field) {
  const el = form.elements[field];
  if (!el) return undefined;
  if (el instanceof RadioNodeList) return el.value;
  if (el.type === "checkbox") return el.checked;
  return el.value.trim();
}

// -- sign-in ------------------------------------------------------------------------------------

function signedOut(note) {
  $("#desk").hidden = true;
  $("#net").hidden = !queue.items().length; // steps still waiting are never hidden
  $("#sign-out").hidden = true;
  $("#who").hidden = true;
  showSignIn(note);
}

/** Sign-out clears what this browser keeps of the clerk: the tokens, the steps not yet sent
 *  (after asking: they may hold what a resident said), the refused ones and the current case.
 *  A shared counter computer then holds nothing of the last clerk's residents. */
async function signOut() {
  const waiting = queue.items().length;
  if (waiting && !window.confirm(t("sign_out_queued", { n: waiting }))) return;
  queue.forget();
  current = null;
  caseView = null;
  picked = null;
  resident = null;
  saveCurrent();
  resetStepForms();
  if (await signOutEverywhere()) return; // the provider ends its session and sends us back
  renderAll();
  signedOut();
}

// -- the desk -------------------------------------------------------------------------------------

function startDesk() {
  const s = session();
  $("#signin").hidden = true;
  $("#desk").hidden = false;
  $("#sign-out").hidden = false;
  $("#net").hidden = false;
  const who = $("#who");
  who.hidden = false;
  who.replaceChildren(h("b", {}, s.clerk_id), h("br"), `${s.center_id} · ${s.counter_id}`);
  loadCatalogue().then(() => { renderAll(); });
  renderAll();
  if (current) refreshCase();
  queue.kick(0);
}

async function loadCatalogue() {
  if (catalogue.size) return;
  try {
    for (const item of await api("/catalogue?limit=500")) catalogue.set(item.code, item);
  } catch { /* offline: names come when the network is back */ }
}

// -- reception: the resident and the service item ----------------------------------------------

async function findResident(event) {
  event.preventDefault();
  const q = $("#resident-q").value.trim();
  const status = $("#resident-status");
  status.className = "help";
  resident = null;
  $("#register-form").hidden = true;
  if (!q) { status.textContent = ""; renderResident(); return; }
  let residentId = null;
  if (UUID_RE.test(q)) {
    residentId = q.toLowerCase();
  } else if (ID_NUMBER_RE.test(q)) {
    if ($("#desk").dataset.vault !== "true") {
      status.textContent = t("resident_vault_missing");
      status.className = "help error-text";
      return;
    }
    try {
      const found = await api("/residents/lookup", { method: "POST", body: { id_number: q.toUpperCase(), purpose: "counter reception" } });
      residentId = found.resident_id;
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        status.textContent = t("resident_new");
        status.className = "badge blue";
        $("#register-form").hidden = false; // first visit: register them, online only
        $("#reg-name").focus();
        renderResident();
        return;
      }
      status.textContent = t("error_generic", { message: err.message });
      return;
    }
  } else {
    status.textContent = t("resident_id_invalid");
    status.className = "help error-text";
    return;
  }
  try {
    const page = await api(`/cases?resident_id=${residentId}&limit=20`);
    resident = { resident_id: residentId, cases: page.items };
    status.textContent = t("resident_found", { n: page.items.length });
    status.className = "badge green";
  } catch (err) {
    resident = { resident_id: residentId, cases: [] };
    status.textContent = t("error_generic", { message: err.message });
  }
  renderResident();
}

/** A first visit: the resident's personal data goes straight to the vault (never into the
 *  browser's queue or storage); the case carries only the opaque id it answers. */
async function registerResident(event) {
  event.preventDefault();
  const form = event.target;
  if (!form.reportValidity()) return;
  const status = $("#resident-status");
  try {
    const answer = await api("/residents", {
      method: "POST",
      body: {
        name: form.elements.name.value.trim(), id_number: $("#resident-q").value.trim().toUpperCase(),
        phone: form.elements.phone.value.trim(),
        consent: { contact: form.elements.contact.checked, surveys: form.elements.contact.checked },
      },
    });
    resident = { resident_id: answer.resident_id, cases: [] };
    form.reset();
    form.hidden = true;
    status.textContent = t("registered");
    status.className = "badge green";
    renderResident();
  } catch (err) {
    status.textContent = t("error_generic", { message: err.message });
    status.className = "help error-text";
  }
}

function renderResident() {
  const card = $("#resident-card");
  const rid = resident?.resident_id || current?.resident_id;
  card.hidden = !rid;
  if (!rid) return;
  $("#resident-badge").textContent = rid.slice(0, 8);
  const list = $("#past-cases");
  const cases = (resident?.cases || []).filter((c) => c.case_id !== current?.id);
  if (!cases.length) {
    list.replaceChildren(h("li", { class: "muted" }, t("past_none")));
    return;
  }
  list.replaceChildren(...cases.map((c) => h("li", {},
    h("div", { class: "p-head" },
      h("span", { class: "p-item" }, name(catalogue.get(c.service_item)) || c.service_item),
      h("span", { class: `badge ${c.status === "resolved" ? "green" : "blue"}` }, t(`status_${c.status}`))),
    h("div", { class: "p-meta" }, [fmtDate(c.opened_at), t(`channel_${c.channel}`),
      c.outcome ? t(`outcome_${c.outcome}`) : null].filter(Boolean).join(" · ")))));
}

let searchTimer = null;
let searchSeq = 0;
let results = [];
let active = -1;

function onSearchInput() {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(search, 150);
}

async function search() {
  const q = $("#item-q").value.trim();
  const list = $("#item-results");
  if (!q) { list.hidden = true; $("#item-q").setAttribute("aria-expanded", "false"); return; }
  const seq = ++searchSeq;
  try {
    results = await api(`/catalogue?q=${encodeURIComponent(q)}&limit=8`);
  } catch {
    results = [...catalogue.values()].filter((i) => i.name_zh.includes(q) || i.name_en.toLowerCase().includes(q.toLowerCase()));
    if (!results.length && !catalogue.size) { toast(t("error_search"), "red"); return; }
  }
  if (seq !== searchSeq) return;
  active = results.length ? 0 : -1;
  renderResults();
}

function renderResults() {
  const list = $("#item-results");
  list.hidden = false;
  $("#item-q").setAttribute("aria-expanded", "true");
  if (!results.length) { list.replaceChildren(h("li", { class: "none" }, t("item_none"))); return; }
  list.replaceChildren(...results.map((item, i) => h("li", {
    role: "option", "aria-selected": String(i === active), dataset: { code: item.code },
    onmousedown: (e) => { e.preventDefault(); pick(item); },
  }, h("span", { class: "zh" }, item.name_zh), h("span", { class: "en" }, item.name_en),
  h("span", { class: "code" }, item.code))));
}

function onSearchKey(event) {
  if ($("#item-results").hidden || !results.length) return;
  if (event.key === "ArrowDown") { active = (active + 1) % results.length; renderResults(); event.preventDefault(); }
  else if (event.key === "ArrowUp") { active = (active - 1 + results.length) % results.length; renderResults(); event.preventDefault(); }
  else if (event.key === "Enter" && active >= 0) { pick(results[active]); event.preventDefault(); }
  else if (event.key === "Escape") { $("#item-results").hidden = true; }
}

function pick(item) {
  picked = item;
  catalogue.set(item.code, item);
  $("#item-results").hidden = true;
  $("#item-q").value = "";
  $("#open-error").hidden = true;
  renderPicked();
}

function renderPicked() {
  const box = $("#item-picked");
  box.hidden = !picked;
  $("#item-search").hidden = Boolean(picked);
  if (!picked) return;
  box.replaceChildren(
    h("div", { class: "names" }, h("div", { class: "zh" }, picked.name_zh), h("div", { class: "en" }, picked.name_en)),
    h("span", { class: "badge" }, picked.code),
    h("button", { type: "button", class: "btn btn-ghost btn-sm", onclick: () => { picked = null; renderPicked(); $("#item-q").focus(); } }, t("item_change")));
}

function openCase() {
  if (!picked) {
    $("#open-error").hidden = false;
    $("#open-error").textContent = t("need_item");
    return;
  }
  const s = session();
  const ref = newKey("case");
  const body = {
    center_id: s.center_id, counter_id: s.counter_id, clerk_id: s.clerk_id,
    channel: $$("input[name=channel]").find((i) => i.checked)?.value || "counter",
    service_item: picked.code, occurred_at: now(),
  };
  if (resident?.resident_id) body.resident_id = resident.resident_id;
  current = { ref, item: picked.code, channel: body.channel, resident_id: body.resident_id || null, opened_at: body.occurred_at };
  saveCurrent();
  caseView = null;
  resetStepForms();
  queue.enqueue("open", ref, body);
  renderAll();
  $("#words").focus();
}

function nextResident() {
  if (current) queue.clearFailed(current.ref);
  current = null;
  caseView = null;
  picked = null;
  resident = null;
  saveCurrent();
  $("#resident-q").value = "";
  $("#resident-status").textContent = "";
  $("#resident-status").className = "help";
  $("#register-form").hidden = true;
  resetStepForms();
  renderAll();
  window.scrollTo({ top: 0 });
  $("#resident-q").focus();
}

function resetStepForms() {
  $$("#steps form").forEach((f) => f.reset());
  $$("[data-show-when]").forEach((el) => { el.hidden = true; });
}

// -- the steps ----------------------------------------------------------------------------------

function bodyOf(op, form) {
  switch (op) {
    case "hear": return { words: formValue(form, "words") };
    case "restate": {
      const confirmed = formValue(form, "confirmed") === "yes";
      const body = { restatement: formValue(form, "restatement"), confirmed };
      if (!confirmed) body.correction = formValue(form, "correction");
      return body;
    }
    case "concerns": return {
      emotion: formValue(form, "emotion"), urgency: formValue(form, "urgency") || "normal",
      needs: lines(formValue(form, "needs")), worries: lines(formValue(form, "worries")),
    };
    case "guidance": {
      const item = catalogue.get(current.item);
      const missing = $$("#documents input").filter((i) => !i.checked).map((i) => i.dataset.zh);
      return {
        service_item: current.item, policy_basis: item ? item.policy_basis.zh : current.item,
        eligibility: formValue(form, "eligibility"), promised: formValue(form, "promised"),
        missing_documents: missing,
      };
    }
    case "actions": {
      const body = { kind: formValue(form, "kind"), description: formValue(form, "description") };
      if (body.kind === "referred" && formValue(form, "referred_to")) body.referred_to = formValue(form, "referred_to");
      return body;
    }
    case "deadlines": return { due_on: formValue(form, "due_on"), description: formValue(form, "description") };
    case "resolve": return {
      outcome: formValue(form, "outcome"), explanation: formValue(form, "explanation"),
      emotion_defused: formValue(form, "emotion_defused"),
    };
    default: throw new Error(op);
  }
}

function check(op, body, form) {
  const required = { concerns: ["emotion"], guidance: ["eligibility"] }[op] || [];
  for (const field of required) {
    if (!body[field]) {
      const first = form.querySelector(`input[name=${field}]`);
      first?.focus();
      toast(`${t(op === "concerns" ? "emotion_arrival" : "eligibility")}?`, "red");
      return false;
    }
  }
  if (op === "resolve" && body.outcome !== "resolved" && !body.explanation) {
    $("#resolve-error").hidden = false;
    $("#resolve-error").textContent = t("explanation_required");
    $("#explanation").focus();
    return false;
  }
  if (op === "restate" && !body.confirmed && !body.correction) {
    $("#correction").focus();
    return false;
  }
  $("#resolve-error").hidden = true;
  return true;
}

function submitStep(event) {
  event.preventDefault();
  const form = event.target;
  const op = form.dataset.op;
  if (!current || !form.reportValidity()) return;
  const body = bodyOf(op, form);
  if (!check(op, body, form)) return;
  queue.enqueue(op, current.ref, { ...body, occurred_at: now() });
  if (op === "actions" || op === "deadlines") {
    form.reset();
    $$("[data-show-when]", form).forEach((el) => { el.hidden = true; });
  }
  renderAll();
}

function deriveDefused() {
  const form = $("form[data-op=resolve]");
  const end = formValue(form, "emotion_end");
  const arrival = formValue($("form[data-op=concerns]"), "emotion") || eventOf("ConcernsNoted")?.payload.emotion;
  if (!end) return;
  const rank = ["calm", "anxious", "upset", "angry", "distressed"];
  $("#defused").checked = !UPSET.includes(end) && (!arrival || rank.indexOf(end) <= rank.indexOf(arrival));
}

// -- the case as intake has it, and what is still queued -------------------------------------------

function eventOf(type) { return caseView?.timeline.find((e) => e.type === type); }

async function refreshCase(after) {
  const id = current && queue.caseId(current.ref);
  if (!id) { renderAll(); return; }
  try {
    caseView = await api(`/cases/${id}${after ? `?after=${after}` : ""}`);
    current.id = id;
    saveCurrent();
  } catch (err) {
    if (!(err instanceof NetworkError || (err instanceof ApiError && err.status >= 500))) throw err;
  }
  renderAll();
}

function pendingFor(ref) {
  return queue.items().filter((i) => i.caseRef === ref).map((i) => ({
    ...i, status: i.id === queue.sendingId ? "sending" : "queued",
  }));
}

function opStatus(op) {
  // "saved" once intake has it; "queued" or "sending" while in the browser; "failed" if refused.
  if (!current) return "";
  if (pendingFor(current.ref).some((i) => i.op === op && i.status === "sending")) return "sending";
  if (pendingFor(current.ref).some((i) => i.op === op)) return "queued";
  if (caseView?.timeline.some((e) => e.type === EVENT_OF[op])) return "saved";
  if (queue.failed().some((f) => f.caseRef === current.ref && f.op === op)) return "failed";
  return "";
}

function summary(type, p) {
  const join = (xs) => (xs || []).join("、");
  switch (type) {
    case "CaseOpened": return [name(catalogue.get(p.service_item)) || p.service_item, t(`channel_${p.channel}`)].join(" · ");
    case "RequestHeard": return `“${p.words}”`;
    case "RequestRestated": return p.confirmed ? `${p.restatement}（${t("confirmed")}）` : `${p.restatement} → ${p.correction}`;
    case "ConcernsNoted": return [t(`emotion_${p.emotion}`), t(`urgency_${p.urgency}`), join(p.needs), join(p.worries)].filter(Boolean).join(" · ");
    case "GuidanceGiven": return [t(`eligibility_${p.eligibility}`), p.promised, p.missing_documents?.length ? `${t("missing")}: ${join(p.missing_documents)}` : ""].filter(Boolean).join(" · ");
    case "ActionTaken": return `${t(`action_${p.kind}`)}: ${p.description}${p.referred_to ? ` → ${p.referred_to}` : ""}`;
    case "DeadlineNoted": return `${fmtDate(p.due_on)} ${p.description}`;
    case "CaseResolved": return [t(`outcome_${p.outcome}`), p.explanation, p.emotion_defused ? t("defused") : ""].filter(Boolean).join(" · ");
    case "CaseReopened": return p.reason;
    default: return "";
  }
}

function renderTimeline() {
  const list = $("#timeline");
  const items = [];
  if (current) {
    for (const e of caseView?.timeline || []) {
      items.push(h("li", { class: "saved", dataset: { type: e.type } },
        h("div", { class: "t-head" }, h("span", { class: "t-title" }, t(`ev_${e.type}`)),
          h("span", { class: "t-time" }, fmtDateTime(e.occurred_at))),
        h("div", { class: "t-body" }, summary(e.type, e.payload))));
    }
    for (const f of queue.failed().filter((x) => x.caseRef === current.ref)) {
      items.push(h("li", { class: "failed" },
        h("div", { class: "t-head" }, h("span", { class: "t-title" }, `${t(`op_${f.op}`)} · ${t("failed")}`),
          h("span", { class: "t-time" }, fmtDateTime(f.body.occurred_at))),
        h("div", { class: "t-body" }, f.error.message)));
    }
    for (const i of pendingFor(current.ref)) {
      items.push(h("li", { class: i.status, dataset: { queued: i.op } },
        h("div", { class: "t-head" }, h("span", { class: "t-title" }, `${t(`op_${i.op}`)} · ${t(i.status)}`),
          h("span", { class: "t-time" }, fmtDateTime(i.body.occurred_at))),
        h("div", { class: "t-body" }, summary(EVENT_OF[i.op], i.body))));
    }
  }
  list.replaceChildren(...items);
  $("#timeline-empty").hidden = items.length > 0;
}

function renderCaseHead() {
  const open = Boolean(current);
  $("#reception").hidden = open;
  $("#case-head").hidden = !open;
  $("#steps").hidden = !open;
  if (!open) return;
  const item = catalogue.get(current.item);
  $("#case-item").textContent = item ? `${item.name_zh}${lang() === "en" ? ` · ${item.name_en}` : ""}` : current.item;
  const id = queue.caseId(current.ref);
  $("#case-meta").textContent = [
    `${t("case_no")} ${id ? id.slice(0, 8) : t("case_pending")}`,
    t(`channel_${current.channel}`),
    `${t("case_opened")} ${fmtDateTime(current.opened_at)}`,
  ].join(" · ");
  const resolved = caseView?.status === "resolved" || opStatus("resolve") === "queued" || opStatus("resolve") === "sending";
  const badge = $("#case-status");
  badge.textContent = t(resolved ? "status_resolved" : "status_open");
  badge.className = `badge ${resolved ? "green" : "blue"}`;
  $("#resolved-banner").hidden = !resolved;
  $$("#steps .card.step").forEach((card) => card.classList.toggle("locked", resolved));
}

function renderPolicy() {
  if (!current) return;
  const item = catalogue.get(current.item);
  if (!item) return;
  $("#policy-text").textContent = words(item.policy_basis);
  $("#policy-days").textContent = item.typical_days === 0 ? t("typical_on_spot") : t("typical_n", { n: item.typical_days });
  $("#policy-recurring").hidden = !item.recurring;
  const box = $("#documents");
  const ticked = new Set($$("input", box).filter((i) => i.checked).map((i) => i.dataset.zh));
  if (!item.documents.length) { box.replaceChildren(h("span", { class: "muted" }, t("documents_none"))); return; }
  box.replaceChildren(...item.documents.map((d) => h("label", { class: "check" },
    h("input", { type: "checkbox", dataset: { zh: d.zh }, checked: ticked.has(d.zh) }),
    h("span", {}, words(d)))));
}

function renderLists() {
  if (!current) return;
  const events = caseView?.timeline || [];
  const pending = pendingFor(current.ref);
  const fill = (selector, type, op, text) => {
    const rows = [
      ...events.filter((e) => e.type === type).map((e) => [text(e.payload), "saved"]),
      ...pending.filter((i) => i.op === op).map((i) => [text(i.body), i.status]),
    ];
    $(selector).replaceChildren(...(rows.length ? rows.map(([label, st]) => h("li", {},
      h("span", { class: `badge ${st === "saved" ? "green" : "amber"}` }, t(st)), label))
      : [h("li", { class: "empty-li" }, t("none_yet"))]));
  };
  fill("#action-list", "ActionTaken", "actions", (p) => `${t(`action_${p.kind}`)} · ${p.description}${p.referred_to ? ` → ${p.referred_to}` : ""}`);
  fill("#deadline-list", "DeadlineNoted", "deadlines", (p) => `${fmtDate(p.due_on)} · ${p.description}`);
}

function renderStates() {
  $$("[data-op-state]").forEach((el) => {
    const st = opStatus(el.dataset.opState);
    el.className = `op-state st-${st}`;
    el.textContent = st ? (st === "queued" ? t("saved_queued") : t(st)) : "";
  });
  $$(".card.step").forEach((card) => {
    const ops = (card.querySelector(".state")?.dataset.for || "").split(" ").filter(Boolean);
    const states = ops.map(opStatus);
    const done = states.length > 0 && states.every((s) => s === "saved" || s === "queued" || s === "sending");
    card.classList.toggle("done", done || (ops.includes("actions") && states.some((s) => s === "saved")));
    const head = card.querySelector(".state");
    const shown = states.includes("failed") ? "failed"
      : states.some((s) => s === "queued" || s === "sending") ? "queued"
        : states.some((s) => s === "saved") ? "saved" : "";
    head.className = `state badge ${{ saved: "green", queued: "amber", failed: "red" }[shown] || ""}`;
    head.textContent = shown ? t(shown) : "";
  });
  // The stepper: steps 1-4 from what the case has (or has queued); 5 and 6 follow by themselves.
  const has = (op) => ["saved", "queued", "sending"].includes(opStatus(op));
  const done = {
    1: has("hear") && has("restate"), 2: has("concerns"), 3: has("guidance"),
    4: has("resolve"), 5: false, 6: false,
  };
  const first = [1, 2, 3, 4].find((n) => !done[n]);
  $$("#stepper li").forEach((li) => {
    const n = Number(li.dataset.step);
    li.className = done[n] ? "done" : (current && n === first ? "current" : (n > 4 ? "auto" : ""));
  });
}

function renderNet() {
  const el = $("#net");
  const n = queue.items().length;
  const failed = current ? queue.failed().filter((f) => f.caseRef === current.ref).length : 0;
  const state = n === 0 ? (failed ? "failed" : "online") : queue.state;
  const text = {
    online: t("net_online"), sending: t("net_sending", { n }), offline: t("net_offline", { n }),
    retrying: t("net_retrying", { n }), auth: t("net_auth", { n }), failed: t("net_failed", { n: failed }),
  }[state] || t("net_online");
  el.textContent = text;
  el.className = `net ${state === "offline" || state === "retrying" || state === "auth" ? "offline" : state}`;
  el.dataset.state = state;
  el.dataset.pending = String(n);
}

function renderAll() {
  renderPicked();
  renderCaseHead();
  renderPolicy();
  renderLists();
  renderTimeline();
  renderStates();
  renderResident();
  renderNet();
}

// -- wiring -------------------------------------------------------------------------------------

queue.addEventListener("change", () => { renderTimeline(); renderStates(); renderLists(); renderNet(); renderCaseHead(); });
queue.addEventListener("state", renderNet);
queue.addEventListener("sent", (e) => {
  const { item, answer } = e.detail;
  if (current && item.caseRef === current.ref) refreshCase(answer.position);
});
queue.addEventListener("failed", (e) => {
  const { error } = e.detail;
  toast(error.code === "rule_violated" ? t("error_rule_violated", { message: error.message })
    : t("error_generic", { message: error.message }), "red");
  renderAll();
});
queue.addEventListener("auth", () => signedOut(t("signin_expired")));

function wire() {
  initLang();
  onLangChange(() => { renderAll(); if (results.length && !$("#item-results").hidden) renderResults(); });
  setupSignIn({
    counter: true,
    roles: ["clerk", "supervisor"],
    probe: (s) => api(`/cases?limit=1&center_id=${encodeURIComponent(s.center_id)}`),
    onSignedIn: startDesk,
    onSignedOut: signedOut,
  });
  $("#sign-out").addEventListener("click", signOut);
  $("#resident-form").addEventListener("submit", findResident);
  $("#register-form").addEventListener("submit", registerResident);
  $("#item-q").addEventListener("input", onSearchInput);
  $("#item-q").addEventListener("keydown", onSearchKey);
  $("#item-q").addEventListener("blur", () => setTimeout(() => { $("#item-results").hidden = true; }, 150));
  $("#open-case").addEventListener("click", openCase);
  $("#next-resident").addEventListener("click", nextResident);
  $$("#steps form").forEach((f) => f.addEventListener("submit", submitStep));
  // fields shown for one choice only ("corrected" -> correction, "referred" -> referred to)
  $$("[data-show-when]").forEach((el) => {
    const [field, value] = el.dataset.showWhen.split("=");
    const form = el.closest("form");
    form.addEventListener("change", () => { el.hidden = formValue(form, field) !== value; });
  });
  $("form[data-op=resolve]").addEventListener("change", (e) => { if (e.target.name === "emotion_end") deriveDefused(); });
  if (currentSession()) startDesk();
  else signedOut();
  applyI18n();
}

wire();
