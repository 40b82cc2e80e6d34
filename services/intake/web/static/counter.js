// The clerk's screen: sign in, receive a resident, walk the six steps, watch the timeline.

import {
  ApiError, NetworkError, api, applyI18n, beforeCenterToday, centerTodayDate, fmtDate, fmtDateTime, h, initLang, isoDay,
  lang, newKey, onLangChange, refusalWords, session, t, toast,
} from "/ui/shared/ui.js";
import {
  currentSession, identityOf, setupSignIn, showSignIn, signOut as signOutEverywhere,
} from "/ui/shared/signin.js";
import { renderPlan } from "/ui/intake/plan.js";
import { StepQueue, clockNow, sendingClock } from "/ui/intake/queue.js";
import { centerToday, dayShown, renderCaseState } from "/ui/intake/attention.js";
import { printNotice, surnameOf } from "/ui/intake/notice.js";
import { watchSurvey } from "/ui/intake/surveyqr.js";

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
  reopen: "CaseReopened", obligations: "ObligationDeclared", handover: "CaseHandedOver",
};

const queue = new StepQueue();
const catalogue = new Map(); // code -> item
let current = null; // {ref, item, channel, resident_id, opened_at, by}: readCurrent at sign-in
let caseView = null; // GET /cases/{id}
let picked = null; // the catalogue item chosen for the next case
let resident = null; // {resident_id, cases: [...]}
let myCases = []; // the signed-in clerk's open cases (GET /cases?clerk_id=…&status=open)
let sitting = null; // the resident at the window: {recorded, resident_id, clock} from their lookup on

// -- helpers ------------------------------------------------------------------------------------

/** The case kept on this tablet, when it is the signed-in clerk's: another clerk signed in on
 *  a shared tablet is not shown (nor takes steps on) the case the last clerk left open. */
function readCurrent() {
  let kept = null;
  try { kept = JSON.parse(localStorage.getItem(CURRENT_KEY)); } catch { return null; }
  return kept && kept.by === session()?.clerk_id ? kept : null;
}

function saveCurrent() {
  if (current) localStorage.setItem(CURRENT_KEY, JSON.stringify({ ...current, by: session()?.clerk_id }));
  else if (readCurrent() || !localStorage.getItem(CURRENT_KEY)) localStorage.removeItem(CURRENT_KEY);
}

const name = (item) => (item ? (lang() === "zh" ? item.name_zh : item.name_en) : "");
const itemName = (code) => name(catalogue.get(code)) || code;
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

const WINDOWS = JSON.parse(document.getElementById("windows")?.textContent || "{}");

/** The windows configured for ``center`` (CENTER_WINDOWS), id -> the name shown. */
function windowsOf(center) { return WINDOWS[center] || WINDOWS["*"] || {}; }

/** The sign-in's window list follows the center of the token being pasted. */
function offerWindows() {
  const select = $("#signin-counter");
  const center = identityOf($("#signin-token")?.value.trim() || "")?.center_id || session()?.center_id;
  const chosen = select.value || session()?.counter_id;
  select.replaceChildren(...Object.entries(windowsOf(center)).map(([id, label]) =>
    h("option", { value: id, selected: id === chosen }, label)));
}

/** The sign-in screen's network line: shown while steps wait (they are never hidden), gone
 *  once none does (sent, or pruned at the center's midnight). */
function renderSignInNet() {
  $("#net").hidden = !queue.items().length;
}

function signedOut(note) {
  $("#desk").hidden = true;
  renderSignInNet();
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

let deskClerk = null; // who the desk was last started for, in this tab

function startDesk() {
  const s = session();
  if (deskClerk !== s.clerk_id) {
    // Another clerk signs in on this tab (the last one's session ended mid-work): nothing of
    // the resident the last clerk had before her, nor what she typed, stays on the desk.
    resident = null; sitting = null; caseView = null; picked = null;
    resetStepForms();
  }
  deskClerk = s.clerk_id;
  current = readCurrent();
  // Its id, in case another clerk's sign-out dropped the ids no queued step names.
  if (current?.id && !queue.caseId(current.ref)) queue.adopt(current.ref, current.id);
  $("#signin").hidden = true;
  $("#desk").hidden = false;
  $("#sign-out").hidden = false;
  $("#net").hidden = false;
  const who = $("#who");
  who.hidden = false;
  who.replaceChildren(h("b", {}, s.clerk_id), h("br"),
    `${s.center_id} · ${windowsOf(s.center_id)[s.counter_id] || s.counter_id}`);
  loadCatalogue().then(() => { renderAll(); });
  renderAll();
  if (!current) $("#resident-q").focus();
  loadMyCases();
  if (current) { refillRefused(); refreshCase(); }
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
  if (!validateId(q)) return;
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
      status.textContent = t("error_generic", { message: refusal(err) });
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
    if (sitting?.resident_id !== residentId || !sittingToday()) {
      if (sitting && !sitting.recorded) recordVisit(); // the one before came only to ask
      sitting = { recorded: false, resident_id: residentId, clock: clockNow() };
    }
    status.textContent = t("resident_found", { n: page.items.length });
    status.className = "badge green";
    await recognise();
    $("#item-q").focus();
  } catch (err) {
    resident = { resident_id: residentId, cases: [] };
    status.textContent = t("error_generic", { message: refusal(err) });
  }
  renderResident();
}

/** A first visit: the resident's personal data goes straight to the vault (never into the
 *  browser's queue or storage); the case carries only the opaque id it answers. */
async function registerResident(event) {
  event.preventDefault();
  const form = event.target;
  if (!validate(form)) return;
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
    await recognise();
    $("#item-q").focus();
    renderResident();
  } catch (err) {
    status.textContent = t("error_generic", { message: refusal(err) });
    status.className = "help error-text";
  }
}

/** The resident's masked name and phone (王*英 · 139****5678), read from the vault (audited) so
 *  the clerk can check them with the person in front of them. */
async function recognise() {
  if (!resident || $("#desk").dataset.vault !== "true") return;
  try {
    resident.masked = await api(`/residents/${resident.resident_id}/masked?purpose=${encodeURIComponent("counter reception")}`);
  } catch { resident.masked = null; }
  renderResident();
}

async function updateResident(event) {
  event.preventDefault();
  const form = event.target;
  if (!resident || !validate(form)) return;
  const body = { consent: { contact: form.elements.contact.checked, surveys: form.elements.contact.checked } };
  const phone = form.elements.phone.value.trim();
  if (phone) body.phone = phone;
  try {
    await api(`/residents/${resident.resident_id}`, { method: "PATCH", body, key: newKey("resident") });
    form.reset();
    form.hidden = true;
    $("#resident-edit").setAttribute("aria-expanded", "false");
    toast(t("resident_updated"), "green");
    await recognise();
    $("#item-q").focus();
  } catch (err) {
    fieldError(form.elements.phone, t("error_generic", { message: explain(err, form).map((r) => r.text).join("；") }));
  }
}

/** The ID field's own message: 18 characters or a resident id (never the browser's). */
function validateId(q) {
  const form = $("#resident-form");
  clearFieldErrors(form);
  if (UUID_RE.test(q) || ID_NUMBER_RE.test(q)) return true;
  fieldError($("#resident-q"), t("resident_id_invalid"));
  $("#resident-q").focus();
  return false;
}

function renderResident() {
  // The eligibility hints' block (hints.js) follows the resident found at reception.
  document.dispatchEvent(new CustomEvent("sixstep:resident", { detail: resident?.resident_id || null }));
  const card = $("#resident-card");
  const rid = resident?.resident_id || current?.resident_id;
  card.hidden = !rid;
  const masked = resident?.masked;
  const who = $("#resident-who");
  who.hidden = !masked || Boolean(current);
  if (masked) {
    $("#resident-masked").textContent = [masked.name, masked.phone].filter(Boolean).join(" · ");
    const consent = masked.consent?.contact;
    $("#resident-consent").textContent = t(consent ? "consent_yes" : "consent_no");
    $("#resident-consent").className = `badge ${consent ? "green" : "amber"}`;
    $("#resident-update").elements.contact.checked = Boolean(consent);
  }
  if (!rid) return;
  $("#resident-badge").textContent = (resident?.resident_id === rid && masked?.name) || rid.slice(0, 8);
  const list = $("#past-cases");
  const cases = (resident?.cases || []).filter((c) => c.case_id !== current?.id);
  if (!cases.length) {
    list.replaceChildren(h("li", { class: "muted" }, t("past_none")));
    return;
  }
  list.replaceChildren(...cases.map(caseRow));
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
    title: `${item.name_en} · ${item.code}`,
  }, h("span", { class: "zh" }, item.name_zh),
  lang() === "en" ? [h("span", { class: "en" }, item.name_en), h("span", { class: "code" }, item.code)] : null)));
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
  $("#open-case").focus();
}

function renderPicked() {
  const box = $("#item-picked");
  box.hidden = !picked;
  $("#item-search").hidden = Boolean(picked);
  if (!picked) return;
  const en = lang() === "en";
  box.title = `${picked.name_en} · ${picked.code}`;
  box.replaceChildren(
    h("div", { class: "names" }, h("div", { class: "zh" }, picked.name_zh), en ? h("div", { class: "en" }, picked.name_en) : null),
    en ? h("span", { class: "badge" }, picked.code) : null,
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
  recordVisit();
  renderAll();
  $("#words").focus();
}

/** Whether the resident at the window sat down on the center's day of today: found again on
 *  another day (the page left as it was overnight, no "next resident"), the same resident is
 *  a new trip. Held over, her two trips were one, dated the evening before (New Year's Eve's:
 *  last year's), and after one recorded, the morning's was never counted. The day is the
 *  services' (ui.js, ``beforeCenterToday``): on a tablet 10 minutes fast, a resident who sat
 *  down at 23:48 and was looked up again at 23:55 was two trips, the second the next day's. */
function sittingToday() {
  return !beforeCenterToday(sitting.clock.queuedAt, sitting.clock.offset);
}

/** One trip (一人次), once per resident sitting down: at the first case opened or taken up for
 *  them, or, when they leave with none, at "next resident" or the next resident's lookup. A
 *  trip that cannot be sent is not retried: it is a count, not a step of a case. */
async function recordVisit(caseId = null) {
  if (sitting?.recorded) return;
  // When they sat down, by the clock then and the page's monotonic clock since: a clock set
  // back while they sat (NTP correcting a fast tablet) is sent as it was set when they sat
  // down, so intake moves the trip by the error that dated it (sendingClock), as a step.
  const clock = sitting?.clock || clockNow();
  sitting = { ...sitting, recorded: true };
  const s = session();
  const body = {
    center_id: s.center_id, counter_id: s.counter_id, occurred_at: clock.queuedAt,
    channel: $$("input[name=channel]").find((i) => i.checked)?.value || "counter",
  };
  if (caseId) body.case_id = caseId;
  try {
    await api("/visits", { method: "POST", body, key: newKey("visit"),
                           sentAt: () => sendingClock(clock) });
  } catch { /* offline or refused: the trip goes uncounted, nothing of the case is lost */ }
}

async function nextResident() {
  if (!(await mayLeave())) return;
  if (sitting && !sitting.recorded) recordVisit();
  sitting = null;
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
  loadMyCases();
}

// -- open cases are never lost: asked before leaving, listed, taken up again ---------------------

function resolvedNow() {
  // A 办结 held behind a refused step does not lock the case: the clerk has to put it right.
  const pending = current ? pendingFor(current.ref).filter((i) => !i.held) : [];
  const last = pending.filter((i) => i.op === "resolve" || i.op === "reopen").at(-1);
  if (last) return last.op === "resolve";
  return caseView?.status === "resolved";
}

/** Whether the clerk may leave the case on screen: nothing typed and unsaved, nothing refused,
 *  and, when it is not resolved, the clerk says so. */
async function mayLeave() {
  if (!current) return true;
  $("#case-error").hidden = true;
  const problems = loose();
  if (problems.length) { stopFor(problems, $("#case-error"), "blocked_next"); return false; }
  if (resolvedNow()) return true;
  const dialog = $("#leave-dialog");
  dialog.returnValue = "";
  const answer = new Promise((done) => {
    dialog.addEventListener("close", () => done(dialog.returnValue === "leave"), { once: true });
  });
  dialog.showModal();
  $("button[value=stay]", dialog).focus();
  return answer;
}

async function loadMyCases(after = null) {
  const s = session();
  if (!s?.clerk_id) return;
  try {
    const q = new URLSearchParams({ center_id: s.center_id, clerk_id: s.clerk_id, status: "open", limit: "50" });
    if (after) q.set("after", String(after));
    myCases = (await api(`/cases?${q}`)).items;
  } catch { return; } // offline: the list comes back with the network
  renderMyCases();
}

function caseRow(c) {
  return h("li", { class: "link" }, h("button", {
    type: "button", class: "case-link", dataset: { case: c.case_id }, onclick: () => takeUp(c.case_id),
  }, h("div", { class: "p-head" },
    h("span", { class: "p-item" }, itemName(c.service_item)),
    h("span", { class: `badge ${c.status === "resolved" ? "green" : "blue"}` }, t(`status_${c.status}`))),
  h("div", { class: "p-meta" }, [fmtDate(c.opened_at), t(`channel_${c.channel}`),
    c.outcome ? t(`outcome_${c.outcome}`) : null].filter(Boolean).join(" · ")),
  dueLine(c)));
}

/** Urgency and due date (办结时限) of a case as intake lists it: on every case the page shows. */
function dueLine(c) {
  return h("div", { class: "p-meta p-due" }, [
    c.urgency ? t(`urgency_${c.urgency}`) : t("urgency_unknown"),
    `${t("due_by")} ${dueDay(c)}`].join(" · "));
}

/** The due date as the clerk reads it out: one counted on a year without a published holiday
 *  schedule says it may move (``due_basis`` provisional), as the printed notice does, while it
 *  can: counted from the item's days (a day typed, promised or a deadline, is never counted
 *  again), on an open case, not past (overdue, it keeps its day: docs/calendar.md). */
export function dueDay(c, today = centerToday()) {
  const kept = c.status === "resolved" || (c.due_source && c.due_source !== "item_days") || c.due_on < today;
  return c.due_on ? dayShown(c.due_on, c.due_basis, kept) : t("due_none");
}

function renderMyCases() {
  const cases = myCases.filter((c) => c.case_id !== current?.id);
  $("#my-cases-count").textContent = String(cases.length);
  $("#my-cases").replaceChildren(...(cases.length ? cases.map(caseRow)
    : [h("li", { class: "muted" }, t("my_cases_none"))]));
}

/** The case the clerk last asked to take up: on a slow line a first click's answer can come
 *  back after a second click's, and must not put the first case back on the desk. */
let takeUpAsked = 0;

/** Take up a case intake has (an open one of the clerk's, a resident's past one): its
 *  timeline, its steps' last words in the forms; a resolved one can be reopened. */
async function takeUp(caseId) {
  if (current?.id === caseId || !(await mayLeave())) return;
  const asked = ++takeUpAsked;
  let view;
  try {
    view = await api(`/cases/${caseId}`);
  } catch (err) {
    if (asked === takeUpAsked) toast(t("error_generic", { message: refusal(err) }), "red");
    return;
  }
  if (asked !== takeUpAsked || current?.id === caseId) return;
  if (sitting) recordVisit(caseId); // the resident came back about it: a return trip
  const ref = newKey("case");
  queue.adopt(ref, caseId);
  current = {
    ref, id: caseId, item: view.service_item, channel: view.channel, resident_id: view.resident_id,
    opened_at: view.opened_at, taken_up: true,
  };
  saveCurrent();
  caseView = view;
  picked = null;
  resetStepForms();
  for (const op of ["hear", "restate", "concerns", "guidance"]) {
    const last = view.timeline.filter((e) => e.type === EVENT_OF[op]).at(-1);
    if (last) refill($(`#steps form[data-op=${op}]`), last.payload);
  }
  renderAll();
  renderMyCases();
  focusField(view.status === "resolved" ? "#reopen-reason" : "#words");
}

function reopenCase(event) {
  event.preventDefault();
  const form = event.target;
  if (!current || !validate(form)) return;
  queue.enqueue("reopen", current.ref, { reason: form.elements.reason.value.trim(), occurred_at: now() });
  form.reset();
  renderAll();
  focusField("#words");
}

function resetStepForms() {
  $$("#steps form").forEach((f) => { f.reset(); delete f.dataset.dirty; f.classList.remove("attention"); });
  $$("[data-show-when]").forEach((el) => { el.hidden = true; });
  $$("#steps .field-error").forEach((el) => el.remove());
  $("#deadline-day").textContent = "";
  $("#obligation-day").textContent = "";
}

// -- nothing lost between steps ------------------------------------------------------------------
// A step typed but not saved, or refused by intake, stops 办结 and 接待下一位, with the reason
// next to the step; a refused step keeps what was typed and says which field and why.

const LISTS = new Set(["actions", "deadlines", "obligations", "handover"]); // forms emptied once their row is added

function unsaved(form) {
  if (LISTS.has(form.dataset.op)) {
    return $$("input[type=text], textarea", form).some((el) => el.value.trim() && !el.closest("[hidden]"));
  }
  return form.dataset.dirty === "1";
}

function refusedFor(op) {
  return current ? queue.failed().filter((f) => f.caseRef === current.ref && f.op === op) : [];
}

/** The steps that stop the case from being left: refused ones, then ones typed but not saved. */
function loose(except = null) {
  if (!current) return [];
  const out = ["open", "reopen"].filter((op) => refusedFor(op).length)
    .map((op) => ({ op, form: null, why: "refused" }));
  for (const form of $$("#steps form[data-op]")) {
    const op = form.dataset.op;
    if (op === except) continue;
    if (refusedFor(op).length) out.push({ op, form, why: "refused" });
    else if (unsaved(form)) out.push({ op, form, why: "unsaved" });
  }
  return out;
}

function stopFor(problems, where, key) {
  where.hidden = false;
  where.textContent = t(key, {
    steps: problems.map((p) => `${t(`op_${p.op}`)}（${t(`why_${p.why}`)}）`).join("、"),
  });
  problems.forEach((p) => p.form?.classList.add("attention"));
  const first = problems.find((p) => p.form)?.form;
  if (first) {
    first.scrollIntoView({ block: "center" });
    ($("[aria-invalid=true]", first) || $("textarea, input:not([type=radio]):not([type=checkbox]), select", first))?.focus();
  }
  renderStates();
}

const has = (key) => t(key) !== key;

/** The label the clerk sees for a form field (in the page's language). */
function labelOf(form, name) {
  const el = form?.elements[name];
  const one = el instanceof RadioNodeList ? el[0] : el;
  const label = one && (one.id ? $(`label[for="${one.id}"]`) : null);
  if (label) return label.textContent.trim();
  const group = one?.closest(".field")?.querySelector(".label");
  if (group) return group.textContent.trim();
  return has(`field_${name}`) ? t(`field_${name}`) : name;
}

const REASONS = {
  missing: "reason_missing", string_too_short: "reason_too_short", string_too_long: "reason_too_long",
  too_short: "reason_too_short", too_long: "reason_too_long", date_parsing: "reason_date",
  date_from_datetime_parsing: "reason_date", date_from_datetime_inexact: "reason_date",
  date_type: "reason_date", string_pattern_mismatch: "reason_pattern", enum: "reason_choice",
  literal_error: "reason_choice",
};

/** Why intake refused a step, in the page's language: ``[{name, text}]``, a field's reasons
 *  from ``details.fields`` (or ``details.field``), else the rule (``details.rule``, whatever
 *  the code: a 403 has rules too), else the code. */
function explain(error, form) {
  const d = error.details || {};
  const fields = d.fields || (d.field ? [{ field: d.field, type: error.code }] : []);
  const out = fields.map((f) => {
    const name = String(f.field).split(".")[0];
    // A code of its own on a field (free_text_unscrubbable: say the note otherwise) is said
    // by the code's words, not as "was not accepted".
    let reason = REASONS[f.type] ? t(REASONS[f.type])
      : f.type !== "invalid_command" && has(`code_${f.type}`) ? t(`code_${f.type}`, d) : t("reason_invalid");
    if (f.type === "invalid_command" && has(`invalid_${name}`)) reason = t(`invalid_${name}`);
    if (f.type === "invalid_command" && d.horizon_days) {
      reason = t("reason_day_window", { earliest: d.earliest, days: d.horizon_days });
    }
    return { name, text: `${labelOf(form, name)}：${reason}` };
  });
  if (out.length) return out;
  // Never the error's ``message``: that is the service's English. Placeholders come from the
  // details (ids, days, codes); the words for every rule are in strings.json, every code's
  // in shared/web/codes.json (tests/unit/test_counter_page_words.py).
  if (d.rule && has(`rule_${d.rule}`)) return [{ text: t(`rule_${d.rule}`, d) }];
  if (has(`code_${error.code}`)) return [{ text: t(`code_${error.code}`, d) }];
  return [{ text: t("refused_other", { code: error.code }) }];
}

/** Why a call failed, in the page's language: an API's refusal by its code (``explain``:
 *  every code has its words in shared/web/codes.json), else the network; never a message in
 *  the browser's or the service's English (a page's own slip goes to the console). The
 *  eligibility hints' card (hints.js) says its refusals with it too. */
export function refusal(err) {
  return err instanceof ApiError ? explain(err).map((r) => r.text).join("；") : refusalWords(err);
}

/** A field's own message under it (the page's, not the browser's pop-up). */
function fieldError(el, text, from = "page") {
  const one = el instanceof RadioNodeList ? el[0] : el;
  if (!one) return;
  const slot = one.closest(".field") || one.closest(".row");
  if (!slot) return;
  const msg = h("span", { class: "field-error", role: "alert", dataset: { for: one.name, from } }, text);
  if (slot.classList.contains("field")) slot.append(msg);
  else slot.after(msg);
  (el instanceof RadioNodeList ? [...el] : [el]).forEach((x) => x.setAttribute("aria-invalid", "true"));
}

function clearFieldErrors(form, from = null) {
  $$(".field-error", form.closest(".card") || form).filter((e) => !from || e.dataset.from === from)
    .forEach((e) => e.remove());
  $$("[aria-invalid]", form).forEach((x) => x.removeAttribute("aria-invalid"));
}

/** The page's own checks before anything is queued: required fields, formats, dates. */
function validate(form) {
  clearFieldErrors(form, "page");
  let first = null;
  const fail = (el, text) => { fieldError(el, text); first ??= el instanceof RadioNodeList ? el[0] : el; };
  for (const el of $$("input, textarea, select", form)) {
    if (el.closest("[hidden]") || el.type === "radio" || el.type === "checkbox") continue;
    const value = el.value.trim();
    if (el.required && !value) fail(el, `${labelOf(form, el.name)}：${t("field_required")}`);
    else if (value && el.dataset.day !== undefined) {
      const day = parseDay(value, isPast(el));
      if (day.error) fail(el, day.error);
    } else if (value && el.pattern && !new RegExp(`^(?:${el.pattern})$`).test(value)) {
      fail(el, `${labelOf(form, el.name)}：${t("field_pattern")}`);
    }
  }
  if (first) first.focus();
  return !first;
}

// -- dates: typed as the clerk says them, never a year the browser made up ------------------------

const DAYS_AHEAD_MAX = 730;
const DAYS_BACK_MAX = 366; // a missed period's day (tracked_from): intake's TRACKED_FROM_DAYS

/** The days a field takes: from today ahead (a deadline), or back to today (``data-day="past"``:
 *  since when an obligation's periods were missed). */
function dayWindow(past = false) { // from the center's today, not the screen's (a UTC screen before 08:00)
  const today = centerTodayDate();
  const other = new Date(today);
  other.setDate(other.getDate() + (past ? -DAYS_BACK_MAX : DAYS_AHEAD_MAX));
  return past ? [other, today] : [today, other];
}

const isPast = (input) => input.dataset.day === "past";

/** ``2026/12/10``, ``2026-12-10``, ``2026.12.10``, ``2026年12月10日``, ``20261210`` or ``12/10``
 *  (the next such day; for ``past``, the last such day come) -> ``{iso, day}``; anything else, a
 *  day that does not exist or one outside the field's window -> ``{error}`` in the page's language. */
function parseDay(text, past = false) {
  const s = text.trim().replace(/\s+/g, "");
  const [first, last] = dayWindow(past);
  const today = past ? last : first;
  let m = s.match(/^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?$/) || s.match(/^(\d{4})(\d{2})(\d{2})$/);
  let y; let mo; let d;
  if (m) [y, mo, d] = m.slice(1).map(Number);
  else if ((m = s.match(/^(\d{1,2})[-/.月](\d{1,2})日?$/))) {
    [mo, d] = m.slice(1).map(Number);
    y = today.getFullYear();
    if (!past && new Date(y, mo - 1, d) < today) y += 1;
    if (past && new Date(y, mo - 1, d) > today) y -= 1;
  } else return { error: t("day_format") };
  const day = new Date(y, mo - 1, d);
  if (day.getFullYear() !== y || day.getMonth() !== mo - 1 || day.getDate() !== d) return { error: t("day_format") };
  if (past && day > last) return { error: t("day_future") };
  if (past && day < first) return { error: t("day_too_old", { min: fmtDate(isoDay(first)) }) };
  if (day < first) return { error: t("day_past") };
  if (day > last) return { error: t("day_far", { max: fmtDate(isoDay(last)) }) };
  return { iso: isoDay(day), day };
}

function echoDay(input, echo) {
  const value = input.value.trim();
  if (!value) { echo.textContent = ""; return; }
  const parsed = parseDay(value, isPast(input));
  echo.className = `help day-echo${parsed.error ? " error-text" : ""}`;
  echo.textContent = parsed.error || parsed.day.toLocaleDateString(lang() === "zh" ? "zh-CN" : "en-GB", {
    year: "numeric", month: "long", day: "numeric", weekday: "long",
  });
}

/** Arrow keys move the day (from today when the field is empty or not a day yet). */
function stepDay(event) {
  if (event.key !== "ArrowUp" && event.key !== "ArrowDown") return;
  event.preventDefault();
  const past = isPast(event.target);
  const parsed = parseDay(event.target.value, past);
  const [first, last] = dayWindow(past);
  const day = parsed.day ? new Date(parsed.day) : new Date(past ? last : first);
  if (parsed.day) day.setDate(day.getDate() + (event.key === "ArrowUp" ? 1 : -1));
  if (day < first || day > last) return;
  event.target.value = isoDay(day).replaceAll("-", "/");
  event.target.dispatchEvent(new Event("input", { bubbles: true }));
}

/** Put a refused step's words back in its form (after a reload, or once a list form emptied). */
function refill(form, body) {
  for (const [k, v] of Object.entries(body)) {
    const el = form.elements[k];
    if (!el || k === "occurred_at") continue;
    if (el instanceof RadioNodeList) {
      const value = v === true ? "yes" : v === false ? "no" : String(v);
      [...el].forEach((r) => { r.checked = r.value === value; });
    } else if (el.type === "checkbox") el.checked = Boolean(v);
    else el.value = Array.isArray(v) ? v.join("\n") : el.dataset.day !== undefined ? String(v).replaceAll("-", "/") : String(v);
  }
  form.dispatchEvent(new Event("change"));
  if (form.elements.due_on) echoDay(form.elements.due_on, $("#deadline-day"));
  if (form.elements.next_due_on) echoDay(form.elements.next_due_on, $("#obligation-day"));
  if (form.elements.tracked_from) echoDay(form.elements.tracked_from, $("#obligation-since-day"));
}

function refillRefused() {
  for (const form of $$("#steps form[data-op]")) {
    const [refused] = refusedFor(form.dataset.op);
    const empty = !$$("input[type=text], textarea", form).some((el) => el.value.trim());
    if (refused && empty) refill(form, refused.body);
  }
}

function renderRefusals() {
  for (const form of $$("#steps form[data-op]")) {
    const [refused] = refusedFor(form.dataset.op);
    clearFieldErrors(form, "server");
    $(".refusal", form)?.remove();
    if (!refused) continue;
    const reasons = explain(refused.error, form);
    for (const r of reasons) if (r.name && form.elements[r.name]) fieldError(form.elements[r.name], r.text, "server");
    const foot = $(".row.end, .card-foot", form) || form.lastElementChild;
    foot.before(h("div", { class: "refusal notice red", role: "alert", dataset: { op: form.dataset.op } },
      h("div", {},
        h("b", {}, t("refused_title")),
        h("ul", {}, ...reasons.map((r) => h("li", {}, r.text))),
        h("div", { class: "small" }, t("refused_fix")),
        h("div", { class: "small", dataset: { kept: "today" } }, t("refused_kept"))),
      h("button", {
        type: "button", class: "btn btn-ghost btn-sm", dataset: { discard: refused.id },
        onclick: () => { queue.discard(refused.id); },
      }, t("refused_discard"))));
  }
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
        missing_documents: missing, plain_words: formValue(form, "plain_words"),
      };
    }
    case "actions": {
      const body = { kind: formValue(form, "kind"), description: formValue(form, "description") };
      if (body.kind === "referred" && formValue(form, "referred_to")) body.referred_to = formValue(form, "referred_to");
      if (body.kind === "referred") body.unit_kind = formValue(form, "unit_kind");
      if (body.kind === "referred" && formValue(form, "unit_contact")) body.unit_contact = formValue(form, "unit_contact");
      if (body.kind === "escalated" && formValue(form, "owner_clerk")) body.owner_clerk = formValue(form, "owner_clerk");
      return body;
    }
    case "deadlines": return { due_on: parseDay(formValue(form, "due_on")).iso, description: formValue(form, "description") };
    case "handover": {
      const to = formValue(form, "to");
      return { [formValue(form, "to_kind") === "team" ? "to_team" : "to_clerk"]: to, reason: formValue(form, "reason") };
    }
    case "obligations": {
      const body = {
        description: formValue(form, "description"), cadence: formValue(form, "cadence"),
        next_due_on: parseDay(formValue(form, "next_due_on")).iso,
      };
      if (formValue(form, "tracked_from")) body.tracked_from = parseDay(formValue(form, "tracked_from"), true).iso;
      return body;
    }
    case "resolve": return {
      outcome: formValue(form, "outcome"), explanation: formValue(form, "explanation"),
      emotion_defused: formValue(form, "emotion_defused"),
      emotion_on_leaving: formValue(form, "emotion_end") || undefined,
    };
    default: throw new Error(op);
  }
}

function check(op, body, form) {
  const required = { concerns: ["emotion"], guidance: ["eligibility"] }[op] || [];
  for (const field of required) {
    if (!body[field]) {
      fieldError(form.elements[field], `${labelOf(form, field)}：${t("field_required")}`);
      form.querySelector(`input[name=${field}]`)?.focus();
      return false;
    }
  }
  if (op === "resolve" && body.outcome !== "resolved" && !body.explanation) {
    $("#resolve-error").hidden = false;
    $("#resolve-error").textContent = t("explanation_required");
    $("#explanation").focus();
    return false;
  }
  if (op === "obligations" && !current.resident_id) {
    fieldError(form.elements.description, t("obligation_needs_resident"));
    form.elements.description.focus();
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
  if (!current || !validate(form)) return;
  const body = bodyOf(op, form);
  if (!check(op, body, form)) return;
  if (op === "resolve") {
    const problems = loose("resolve");
    if (problems.length) { stopFor(problems, $("#resolve-error"), "blocked_resolve"); return; }
  }
  const [refused] = refusedFor(op);
  if (refused) queue.resend(refused.id, { ...body, occurred_at: now() });
  else queue.enqueue(op, current.ref, { ...body, occurred_at: now() });
  delete form.dataset.dirty;
  form.classList.remove("attention");
  if (LISTS.has(op)) {
    form.reset();
    $$("[data-show-when]", form).forEach((el) => { el.hidden = true; });
    if (op === "deadlines") $("#deadline-day").textContent = "";
    if (op === "obligations") { $("#obligation-day").textContent = ""; $("#obligation-since-day").textContent = ""; }
  }
  renderAll();
  focusAfter(op);
}

// -- the one-time notice (一次性告知), printed for the resident -----------------------------------

const NOTICE_SIZE_KEY = "sixstep.counter.notice-size.v1";

/** Print the case's notice: what intake has of it (after the steps still being sent), addressed
 *  by the surname of the resident looked up at this window, if any. */
async function printCaseNotice() {
  const id = current && queue.caseId(current.ref);
  if (!id) return;
  const problems = loose();
  if (problems.length) { stopFor(problems, $("#case-error"), "blocked_notice"); return; }
  const sending = pendingFor(current.ref).length;
  if (sending) { toast(t("notice_wait", { n: sending }), "amber"); return; }
  try {
    const masked = resident?.resident_id === current.resident_id ? resident?.masked?.name : null;
    // After the last step saved (``current.saved``): the case read after it may still be on
    // its way, and a notice read after the older position could leave that step out.
    const after = Math.max(caseView?.position || 0, current.saved || 0) || null;
    await printNotice(id, { surname: surnameOf(masked), size: $("#notice-size").value, after });
  } catch (err) {
    toast(t("notice_failed", { message: refusal(err) }), "red");
  }
}

// -- keyboard first: the ID reader, Ctrl+Enter, Alt+1…4 and Alt+0 ---------------------------------

const EDITABLE = "input, textarea, select, [contenteditable]";
/** The first field of each step (Alt+1…4) and of 办结 (Alt+0). */
const FIRST_FIELD = {
  1: "#words", 2: "form[data-op=concerns] input[name=emotion]",
  3: "form[data-op=guidance] input[name=eligibility]", 4: "#action-desc",
  0: "form[data-op=resolve] input[name=outcome]",
};
/** Where the focus goes once a step is saved: the next thing the clerk does. */
const NEXT_AFTER = {
  hear: "#restatement", restate: FIRST_FIELD[2], concerns: FIRST_FIELD[3], guidance: FIRST_FIELD[4],
  actions: "#action-desc", deadlines: "#deadline-due", obligations: "#obligation-desc",
  resolve: "#next-resident",
};

/** Focus a field (of a radio group: the chosen one, else the first) and bring it into view. */
function focusField(selector) {
  const els = $$(selector);
  const el = els.find((e) => e.checked) || els[0];
  if (!el) return;
  el.focus({ preventScroll: true });
  el.scrollIntoView({ block: "center" });
}

function focusAfter(op) { if (NEXT_AFTER[op]) focusField(NEXT_AFTER[op]); }

function onKey(event) {
  if ($("#desk").hidden) return;
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
    const form = document.activeElement?.closest("#steps form[data-op]");
    if (form) { event.preventDefault(); form.requestSubmit(); }
    return;
  }
  if (event.altKey && !event.ctrlKey && current) {
    const n = /^Digit([0-4])$/.exec(event.code)?.[1];
    if (n !== undefined) { event.preventDefault(); focusField(FIRST_FIELD[n]); return; }
    if (event.code === "KeyN") { event.preventDefault(); nextResident(); return; }
    if (event.code === "KeyP") { event.preventDefault(); printCaseNotice(); return; }
  }
  // A card reader types the ID number and Enter: while no field has the focus, its digits go
  // to the ID field.
  if (!current && !event.ctrlKey && !event.altKey && !event.metaKey && /^[0-9Xx]$/.test(event.key)
      && !document.activeElement?.matches(EDITABLE)) {
    $("#resident-q").focus();
  }
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

/** The latest read of the case asked for: each step's answer asks again (after its position),
 *  and the answers can come back out of order; an older one must not take the timeline back. */
let caseAsked = 0;

async function refreshCase(after) {
  const id = current && queue.caseId(current.ref);
  if (!id) { renderAll(); return; }
  const asked = ++caseAsked;
  try {
    const view = await api(`/cases/${id}${after ? `?after=${after}` : ""}`);
    // A later read was asked since, or another case is on the desk now: this answer is stale.
    if (asked !== caseAsked || !current || queue.caseId(current.ref) !== id) return;
    caseView = view;
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
  // "failed" while intake's refusal waits for the clerk; "sending", "held" (behind a refused
  // step) or "queued" while in the browser; "saved" once intake has it.
  if (!current) return "";
  const pending = pendingFor(current.ref).filter((i) => i.op === op);
  if (refusedFor(op).length) return "failed";
  if (pending.some((i) => i.status === "sending")) return "sending";
  if (pending.some((i) => i.held)) return "held";
  if (pending.length) return "queued";
  const timeline = caseView?.timeline || [];
  const since = op === "resolve" ? timeline.findLastIndex((e) => e.type === "CaseReopened") : -1;
  if (timeline.slice(since + 1).some((e) => e.type === EVENT_OF[op])) return "saved";
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
    case "CaseHandedOver": return `→ ${p.to_clerk || p.to_team}${p.reason ? ` · ${p.reason}` : ""}`;
    case "ObligationDeclared": return [t(`cadence_${p.cadence}`), p.description, t("obligation_next", { day: fmtDate(p.next_due_on) }),
      p.tracked_from ? t("obligation_since_row", { day: fmtDate(p.tracked_from) }) : null].filter(Boolean).join(" · ");
    case "CaseDueDateSet": return [fmtDate(p.due_on), t(`due_source_${p.source}`), p.note].filter(Boolean).join(" · ");
    case "CaseResolved": return [t(`outcome_${p.outcome}`), p.explanation, p.emotion_defused ? t("defused") : ""].filter(Boolean).join(" · ");
    case "CaseReopened": return p.reason === "resident_says_unsolved" ? t("reopened_unsolved") : p.reason;
    default: return "";
  }
}

/** A due date's row on the case's timeline (CaseDueDateSet), as a clerk needs it: the day,
 *  暂定 beside it only while it may still move (the one in force, counted from the item's
 *  days, on an open case, not past: docs/calendar.md, "What keeps its day"), the day it
 *  replaced, why (the item's working days from the day of guidance, a promise, a deadline,
 *  moved by hand with its reason, counted again on reopening or once the holiday schedule was
 *  published), and who set it. Before, the row said the day and where it came from, nothing of
 *  why it moved nor who moved it. */
export function dueSetRow(e, view, today = centerToday()) {
  const p = e.payload;
  const sets = (view?.timeline || []).filter((x) => x.type === "CaseDueDateSet");
  const inForce = !sets.length || sets.at(-1).version === e.version;
  const kept = !inForce || view?.status === "resolved" || p.source !== "item_days" || p.due_on < today;
  const counted = p.source === "item_days" && p.counted_from && p.working_days != null;
  const why = !counted ? t(`due_source_${p.source}`) : p.working_days === 0
    ? t("due_counted_now", { day: fmtDate(p.counted_from) })
    : t("due_counted", { day: fmtDate(p.counted_from), n: p.working_days });
  return [
    dayShown(p.due_on, p.basis, kept),
    p.previous_due_on ? t("due_was", { day: fmtDate(p.previous_due_on) }) : null,
    why,
    ["reopened", "calendar_published"].includes(p.cause) ? t(`due_cause_${p.cause}`) : null,
    p.note,
    t("due_set_by", { who: e.actor?.startsWith("system:") ? t("who_system") : e.actor }),
  ].filter(Boolean).join(" · ");
}

function renderTimeline() {
  const list = $("#timeline");
  const items = [];
  if (current) {
    for (const e of caseView?.timeline || []) {
      items.push(h("li", { class: "saved", dataset: { type: e.type } },
        h("div", { class: "t-head" }, h("span", { class: "t-title" }, t(`ev_${e.type}`)),
          h("span", { class: "t-time" }, fmtDateTime(e.occurred_at))),
        h("div", { class: "t-body" }, e.type === "CaseDueDateSet" ? dueSetRow(e, caseView)
          : summary(e.type, e.payload))));
    }
    for (const f of queue.failed().filter((x) => x.caseRef === current.ref)) {
      items.push(h("li", { class: "failed", dataset: { refused: f.op } },
        h("div", { class: "t-head" }, h("span", { class: "t-title" }, `${t(`op_${f.op}`)} · ${t("failed")}`),
          h("span", { class: "t-time" }, fmtDateTime(f.body.occurred_at))),
        h("div", { class: "t-body" }, explain(f.error, $(`#steps form[data-op=${f.op}]`)).map((r) => r.text).join("；")),
        $(`#steps form[data-op=${f.op}]`) ? null : h("button", {
          type: "button", class: "btn btn-ghost btn-sm", onclick: () => queue.discard(f.id),
        }, t("refused_discard"))));
    }
    for (const i of pendingFor(current.ref)) {
      const st = i.held ? "held" : i.status;
      items.push(h("li", { class: i.status, dataset: { queued: i.op } },
        h("div", { class: "t-head" }, h("span", { class: "t-title" }, `${t(`op_${i.op}`)} · ${t(st)}`),
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
    ...(caseView ? [caseView.urgency ? t(`urgency_${caseView.urgency}`) : t("urgency_unknown"),
      `${t("due_by")} ${dueDay(caseView)}`] : []),
  ].join(" · ");
  const resolved = resolvedNow();
  $("#reopen-form").hidden = !(resolved && current.taken_up && caseView?.status === "resolved");
  const badge = $("#case-status");
  badge.textContent = t(resolved ? "status_resolved" : "status_open");
  badge.className = `badge ${resolved ? "green" : "blue"}`;
  $("#resolved-banner").hidden = !resolved;
  renderCaseState($("#case-state"), caseView);
  $("#print-notice").disabled = !id;
  watchSurvey(resolved && id && caseView?.status === "resolved" ? id : null);
  $$("#steps .card.step").forEach((card) => card.classList.toggle("locked", resolved));
}

function renderPolicy() {
  if (!current) return;
  const item = catalogue.get(current.item);
  if (!item) return;
  $("#policy-text").textContent = words(item.policy_basis);
  $("#policy-days").textContent = item.typical_days === 0 ? t("typical_on_spot") : t("typical_n", { n: item.typical_days });
  $("#policy-recurring").hidden = !item.recurring;
  // The plain words start from the catalogue's summary, in the resident's language (Chinese).
  const plain = $("#plain-words");
  if (!plain.value.trim() && item.summary && !$("form[data-op=guidance]").dataset.dirty) plain.value = item.summary.zh;
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
  fill("#obligation-list", "ObligationDeclared", "obligations", (p) => summary("ObligationDeclared", p));
}

/** A step's state with what is typed in its form: "unsaved" when typed and not saved. */
function formStatus(op) {
  const st = opStatus(op);
  const form = $(`#steps form[data-op=${op}]`);
  if (st !== "failed" && form && current && unsaved(form)) return "unsaved";
  return st;
}

function renderStates() {
  $$("[data-op-state]").forEach((el) => {
    const st = formStatus(el.dataset.opState);
    el.className = `op-state st-${st}`;
    el.textContent = st ? (st === "queued" ? t("saved_queued") : t(st)) : "";
  });
  $$(".card.step").forEach((card) => {
    const ops = (card.querySelector(".state")?.dataset.for || "").split(" ").filter(Boolean);
    const states = ops.map(formStatus);
    const done = states.length > 0 && states.every((s) => s === "saved" || s === "queued" || s === "sending");
    card.classList.toggle("done", done || (ops.includes("actions") && states.some((s) => s === "saved")));
    const head = card.querySelector(".state");
    const shown = states.includes("failed") ? "failed" : states.includes("unsaved") ? "unsaved"
      : states.some((s) => s === "queued" || s === "sending" || s === "held") ? "queued"
        : states.some((s) => s === "saved") ? "saved" : "";
    head.className = `state badge ${{ saved: "green", queued: "amber", unsaved: "amber", failed: "red" }[shown] || ""}`;
    head.textContent = shown ? t(shown) : "";
  });
  $$("#steps form[data-op]").forEach((form) => {
    if (form.classList.contains("attention") && !unsaved(form) && !refusedFor(form.dataset.op).length) {
      form.classList.remove("attention");
    }
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
  const failed = queue.failed().length;
  const expired = queue.expired(); // never sent by the day's end: gone from the tablet
  const state = failed ? "failed" : n === 0 ? "online" : queue.state;
  const text = {
    online: t("net_online"), sending: t("net_sending", { n }), offline: t("net_offline", { n }),
    retrying: t("net_retrying", { n }), auth: t("net_auth", { n }),
    failed: expired ? t("net_expired", { n: expired }) : t("net_failed", { n: failed }),
  }[state] || t("net_online");
  el.textContent = text;
  el.className = `net ${state === "offline" || state === "retrying" || state === "auth" ? "offline" : state}`;
  el.dataset.state = state;
  el.dataset.pending = String(n);
}

function renderAll() {
  renderMyCases();
  renderPicked();
  renderCaseHead();
  renderPolicy();
  renderLists();
  renderTimeline();
  renderPlan(current ? caseView : null);
  renderRefusals();
  renderStates();
  renderResident();
  renderNet();
}

// -- wiring -------------------------------------------------------------------------------------

queue.addEventListener("change", () => {
  renderTimeline(); renderRefusals(); renderStates(); renderLists(); renderNet(); renderCaseHead();
  if ($("#desk").hidden) renderSignInNet();
});
queue.addEventListener("state", renderNet);
queue.addEventListener("sent", (e) => {
  const { item, answer } = e.detail;
  if (current && item.caseRef === current.ref) {
    // The case's last step saved: what the notice is read after, also while the read below
    // (after the same position) has not come back yet.
    current.saved = Math.max(current.saved || 0, answer.position || 0);
    refreshCase(answer.position);
  }
  if (["open", "resolve", "reopen"].includes(item.op)) loadMyCases(answer.position);
});
queue.addEventListener("failed", (e) => {
  const { item, error } = e.detail;
  const form = $(`#steps form[data-op=${item.op}]`);
  toast(`${t(`op_${item.op}`)} · ${t("failed")}：${explain(error, form).map((r) => r.text).join("；")}`, "red");
  if (current && item.caseRef === current.ref) refillRefused();
  renderAll();
});
queue.addEventListener("auth", () => signedOut(t("signin_expired")));

function wire() {
  initLang();
  queue.prune(); // before anyone signs in: what no clerk sent by the day's end goes (queue.js)
  queue.pruneAtDayEnds(); // and at each day's end while the page stays open, signed in or not
  onLangChange(() => { renderAll(); if (results.length && !$("#item-results").hidden) renderResults(); });
  setupSignIn({
    counter: true,
    roles: ["clerk", "supervisor"],
    probe: (s) => api(`/cases?limit=1&center_id=${encodeURIComponent(s.center_id)}`),
    onSignedIn: startDesk,
    onSignedOut: signedOut,
  });
  $("#sign-out").addEventListener("click", signOut);
  offerWindows();
  $("#signin-token")?.addEventListener("input", offerWindows);
  document.addEventListener("keydown", onKey);
  $("#resident-form").addEventListener("submit", findResident);
  $("#register-form").addEventListener("submit", registerResident);
  $("#resident-update").addEventListener("submit", updateResident);
  $("#resident-edit").addEventListener("click", () => {
    const form = $("#resident-update");
    form.hidden = !form.hidden;
    $("#resident-edit").setAttribute("aria-expanded", String(!form.hidden));
    if (!form.hidden) $("#upd-phone").focus();
  });
  $("#item-q").addEventListener("input", onSearchInput);
  $("#item-q").addEventListener("keydown", onSearchKey);
  $("#item-q").addEventListener("blur", () => setTimeout(() => { $("#item-results").hidden = true; }, 150));
  $("#open-case").addEventListener("click", openCase);
  $("#next-resident").addEventListener("click", nextResident);
  $("#reopen-form").addEventListener("submit", reopenCase);
  $$("#steps form").forEach((f) => {
    f.addEventListener("submit", submitStep);
    const touched = (e) => {
      if (!current) return;
      if (!LISTS.has(f.dataset.op)) f.dataset.dirty = "1";
      $$(`.field-error[data-for="${e.target.name}"]`, f.closest(".card")).forEach((x) => x.remove());
      e.target.removeAttribute?.("aria-invalid");
      renderStates();
    };
    f.addEventListener("input", touched); // also radios, boxes, selects; not "change", which a blur fires
  });
  $("#deadline-due").addEventListener("input", (e) => echoDay(e.target, $("#deadline-day")));
  $("#deadline-due").addEventListener("keydown", stepDay);
  $("#obligation-due").addEventListener("input", (e) => echoDay(e.target, $("#obligation-day")));
  $("#obligation-due").addEventListener("keydown", stepDay);
  $("#obligation-since").addEventListener("input", (e) => echoDay(e.target, $("#obligation-since-day")));
  $("#obligation-since").addEventListener("keydown", stepDay);
  $("#print-notice").addEventListener("click", printCaseNotice);
  $("#notice-size").value = localStorage.getItem(NOTICE_SIZE_KEY) || "a5";
  $("#notice-size").addEventListener("change", (e) => localStorage.setItem(NOTICE_SIZE_KEY, e.target.value));
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
