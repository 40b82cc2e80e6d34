// What every sixstep page uses: words in two languages, the signed-in session, API calls.
// Plain ES module, no build step.

const STRINGS = JSON.parse(document.getElementById("strings")?.textContent || '{"zh":{},"en":{}}');
const LANG_KEY = "sixstep.lang";
const LANG_COOKIE = "sixstep_lang";
const SESSION_KEY = "sixstep.session";

// -- language ---------------------------------------------------------------------------------

let current = document.body.dataset.lang || "zh";
const listeners = new Set();

export function lang() { return current; }

/** The word for ``key`` in the current language; ``{name}`` placeholders from ``vars``. */
export function t(key, vars = {}) {
  const table = STRINGS[current] || {};
  let text = table[key] ?? STRINGS.zh?.[key] ?? key;
  for (const [k, v] of Object.entries(vars)) text = text.replaceAll(`{${k}}`, v);
  return text;
}

/** Translate every ``[data-i18n]`` (text), ``[data-i18n-placeholder]``, ``[data-i18n-title]``. */
export function applyI18n(root = document) {
  root.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  root.querySelectorAll("[data-i18n-placeholder]").forEach((el) => {
    el.placeholder = t(el.dataset.i18nPlaceholder);
  });
  root.querySelectorAll("[data-i18n-title]").forEach((el) => { el.title = t(el.dataset.i18nTitle); });
  root.querySelectorAll("[data-lang-button]").forEach((el) => {
    el.setAttribute("aria-pressed", String(el.dataset.langButton === current));
  });
  document.documentElement.lang = current === "zh" ? "zh-CN" : "en";
  if (STRINGS[current]?.page_title) document.title = t("page_title");
}

export function setLang(value) {
  if (!(value in STRINGS) || value === current) return;
  current = value;
  document.body.dataset.lang = value;
  localStorage.setItem(LANG_KEY, value);
  document.cookie = `${LANG_COOKIE}=${value}; path=/; max-age=31536000; samesite=lax`;
  applyI18n();
  listeners.forEach((fn) => fn(value));
}

export function onLangChange(fn) { listeners.add(fn); }

/** Language buttons (``[data-lang-button=zh|en]``) switch in place; a stored choice wins over
 *  the server's default unless the URL names one. */
export function initLang() {
  const fromUrl = new URLSearchParams(location.search).get("lang");
  const stored = localStorage.getItem(LANG_KEY);
  if (!fromUrl && stored && stored !== current && stored in STRINGS) setLang(stored);
  else applyI18n();
  document.querySelectorAll("[data-lang-button]").forEach((el) => {
    el.addEventListener("click", () => setLang(el.dataset.langButton));
  });
}

// -- the signed-in session (sessionStorage: gone when the tab closes) ----------------------------

/** The claims of a JWT, read without checking it (the server checks); ``{}`` if not a JWT. */
export function claimsOf(token) {
  try {
    const part = token.split(".")[1];
    const json = atob(part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "="));
    return JSON.parse(decodeURIComponent(escape(json)));
  } catch {
    return {};
  }
}

export function session() {
  try { return JSON.parse(sessionStorage.getItem(SESSION_KEY)) || null; } catch { return null; }
}

export function saveSession(value) { sessionStorage.setItem(SESSION_KEY, JSON.stringify(value)); }

export function clearSession() { sessionStorage.removeItem(SESSION_KEY); }

// -- API calls ----------------------------------------------------------------------------------

/** Thrown when the request never got an answer (network down, server unreachable). */
export class NetworkError extends Error {}

/** An answer with an error status; ``code`` is the API's ``error.code``. */
export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message || `HTTP ${status}`);
    this.status = status;
    this.code = body?.error?.code || `http_${status}`;
    this.details = body?.error?.details || {};
  }
}

/** Why a call was refused, in the page's own words (its strings): ``rule_<details.rule>``,
 *  else ``code_<code>``, each filled from the details, else ``refused_<status>``,
 *  ``refused_<4xx|5xx>``, ``refused_other`` (with the code); ``refused_network`` when no
 *  answer came. Never the error's ``message``, the service's (or the browser's) English; a
 *  page's own slip goes to the console. */
export function refusalWords(err) {
  const known = (key) => (STRINGS[current]?.[key] ?? STRINGS.zh?.[key]) !== undefined;
  if (err instanceof NetworkError) return t("refused_network");
  if (!(err instanceof ApiError)) { console.error(err); return t("refused_unexpected"); }
  const d = err.details;
  if (d.rule && known(`rule_${d.rule}`)) return t(`rule_${d.rule}`, d);
  if (known(`code_${err.code}`)) return t(`code_${err.code}`, d);
  const status = [`refused_${err.status}`, `refused_${Math.floor(err.status / 100)}xx`].find(known);
  return status ? t(status) : t("refused_other", { code: err.code });
}

export function authHeaders() {
  const s = session();
  const out = {};
  if (s?.token) out.Authorization = `Bearer ${s.token}`;
  else if (s?.clerk_id) out["X-Actor"] = s.clerk_id;
  return out;
}

let renewer = null;

/** ``fn()`` renews the session's token (oidc.js): called before a call when the token is about
 *  to expire, and once more when the API answers ``token_expired``. */
export function setRenewer(fn) { renewer = fn; }

/** Whether the token was renewed. The provider out of reach (the network down, or down a
 *  moment ago) is the network's failure, not the token's: the call fails as offline and the
 *  queue keeps its step. Sent with the token this device's clock says has run out, a step
 *  that went out as the network came back carried the old token past the renewal. */
async function renewed() {
  if (!renewer) return false;
  try { await renewer(); return true; } catch (err) {
    if (err instanceof NetworkError) throw err;
    return false;
  }
}

/** A write that says when it happened (``occurred_at``) says this device's clock as it is sent
 *  too (``sent_at``, anew on every attempt): a step kept while the network was down arrives
 *  behind the service's clock whatever the tablet's clock says, and only ``sent_at`` shows
 *  the service how far off that clock is (docs/api.md, "A counter's clock running fast").
 *  ``now``: this device's clock as the step's ``occurred_at`` read it (the offline queue's,
 *  when the clock was set back while the step waited), else the clock as it is. */
export function stamped(body, now = new Date()) {
  return body && typeof body === "object" && !Array.isArray(body) && "occurred_at" in body
    ? { ...body, sent_at: now.toISOString() } : body;
}

/** How far this device's clock may move against the monotonic one before it counts as set
 *  (the 5 s the service takes as said, as the offline queue's ``SET_BACK_MS``). */
const CLOCK_SET_MS = 5000;

let offset = null;
let offsetRead = null; // this device's clock and the page's monotonic clock as it was read

/** How far the service's clock runs ahead of this device's, in ms (negative: behind), as this
 *  page last read it off an answer's ``Date`` header (whole seconds, so give or take a second
 *  and the answer's trip: well inside the 5 s the service takes as said); null until this
 *  page has had an answer. The offline queue keeps it with each step, to tell after a reload
 *  how far this device's clock was changed while the step waited (``sendingClock``).
 *  This device's clock set since the answer (the network down meanwhile, no answer to read
 *  it again) is seen on the page's monotonic clock: set back, the offset grows by as much;
 *  set forward (or the tablet asleep, its monotonic clock stopped: not told apart), no
 *  offset is known (null). Read as it was, a step queued after a slow clock was set right
 *  kept the offset of the wrong clock, and after a restart was sent as that clock, dated
 *  4 minutes late. ``now``, ``tick``: this device's clock and the monotonic one. */
export function serviceOffset(now = Date.now(), tick = performance.now()) {
  if (offset === null || offsetRead === null) return offset;
  const set = (now - offsetRead.now) - (tick - offsetRead.tick); // < 0: set back
  if (set < -CLOCK_SET_MS) return offset - set;
  return set > CLOCK_SET_MS ? null : offset;
}

/** Whether this page had read the services' clock and has since seen this device's clock
 *  set forward (or the tablet asleep: not told apart), so that no services' clock is known
 *  now (``serviceOffset`` null). A center's day judged then on this device's clock was the
 *  wrong one: a clock jumped 2 hours forward at 22:45 dropped the day's unsent steps as
 *  yesterday's (``readServicesClock`` first). */
export function servicesClockLost(now = Date.now(), tick = performance.now()) {
  return offset !== null && serviceOffset(now, tick) === null;
}

/** Reads the services' clock off a small answer of the page's own service (a ``HEAD`` of the
 *  page: no token, nothing logged of a resident); offline, nothing changes. */
export async function readServicesClock() {
  try {
    readOffset(await fetch(location.pathname, { method: "HEAD", cache: "no-store" }));
  } catch { /* offline: the clock stays unknown, and the steps wait */ }
}

const clockListeners = new Set();

/** ``fn()`` is told when this page learns the services' clock anew: its first reading, or one
 *  that moved by more than the 5 s taken as said (this device's clock set, or asleep). What
 *  was timed on this device's clock before (the center's day end: ``untilCenterDayEnd``) is
 *  timed again on theirs. */
export function onServicesClock(fn) { clockListeners.add(fn); }

function readOffset(response) {
  const date = Date.parse(response.headers.get("Date") || "");
  if (Number.isNaN(date)) return;
  const before = serviceOffset();
  const now = Date.now();
  offset = date + 500 - now; // the middle of its second
  offsetRead = { now, tick: performance.now() };
  if (before === null || Math.abs(offset - before) > CLOCK_SET_MS) clockListeners.forEach((fn) => fn());
}

/** Call the API; JSON in and out. ``key``: the Idempotency-Key of a write. ``sentAt``: what
 *  to say as this device's clock (``sent_at``) at each attempt, a function (default: the
 *  clock as it is). */
export async function api(path, { method = "GET", body, key, signal, again = false, sentAt } = {}) {
  const s = session();
  if (renewer && !again && s?.expires_at && s.expires_at - Date.now() < 10_000) await renewed();
  const headers = { Accept: "application/json", ...authHeaders() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (key) headers["Idempotency-Key"] = key;
  let response;
  try {
    response = await fetch(path, {
      method, headers, signal, cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(stamped(body, sentAt ? sentAt() : new Date())),
    });
  } catch (err) {
    if (err?.name === "AbortError") throw err;
    throw new NetworkError(String(err?.message || err));
  }
  readOffset(response);
  let data = null;
  const text = await response.text().catch(() => "");
  if (text) { try { data = JSON.parse(text); } catch { data = { raw: text }; } }
  if (response.status === 401 && data?.error?.code === "token_expired" && !again && await renewed()) {
    return api(path, { method, body, key, signal, again: true, sentAt });
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/** A fresh Idempotency-Key (A-Z a-z 0-9 _ . : -, 8-128 characters). */
export function newKey(prefix = "ui") {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return `${prefix}-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

// -- small DOM helpers --------------------------------------------------------------------------

/** ``h("div", {class: "x", onclick: fn}, "text", child)`` */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function toast(message, kind = "") {
  let box = document.querySelector(".toasts");
  if (!box) { box = h("div", { class: "toasts", role: "status", "aria-live": "polite" }); document.body.append(box); }
  const el = h("div", { class: `toast ${kind}` }, message);
  box.append(el);
  setTimeout(() => el.remove(), 4200);
}

/** The center's time zone (``CENTER_TIMEZONE``), carried by the page (``data-tz``): every
 *  moment a page shows is read on the center's clock, not the screen's; a board or counter
 *  machine left on UTC would otherwise show yesterday's date from 00:00 to 08:00 in Shanghai. */
export function centerZone() {
  return document.querySelector("[data-tz]")?.dataset.tz || "Asia/Shanghai";
}

const locale = () => (current === "zh" ? "zh-CN" : "en-GB");

export function fmtDateTime(value) {
  if (!value) return "";
  return new Date(value).toLocaleString(locale(), {
    month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false, timeZone: centerZone(),
  });
}

/** A calendar day (``YYYY-MM-DD``) as it is; a moment as its day in the center's zone. */
export function fmtDate(value) {
  if (!value) return "";
  const day = typeof value === "string" && value.length === 10;
  return new Date(day ? `${value}T00:00:00Z` : value).toLocaleDateString(locale(), {
    year: "numeric", month: "2-digit", day: "2-digit", timeZone: day ? "UTC" : centerZone(),
  });
}

export function fmtTime(value) {
  const d = value ? new Date(value) : new Date();
  return d.toLocaleTimeString(locale(), { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false, timeZone: centerZone() });
}

/** ``YYYY-MM-DD`` of a moment in ``zone`` (the center's), whatever zone the screen is set to.
 *  A moment the services stated (an answer's ``created_at``), or one already on their clock;
 *  the center's day of this device's clock is ``centerDay``. */
export function dayIn(zone, d = new Date()) {
  return new Intl.DateTimeFormat("en-CA", { timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit" }).format(d);
}

// -- the center's day, on the services' clock ---------------------------------------------------
//
// Every "center's day" a page judges (today, for a due date or a day field's window; the day a
// queued or refused step was kept on, and its end; the day a resident sat down) is judged here:
// in the center's zone, on the services' clock, which is this device's moved by the offset the
// page read off the services' answers (``serviceOffset``). On the tablet's own clock, a tablet
// 10 minutes fast dropped the unsent steps (what a resident said) 10 minutes before the center's
// midnight, and took a resident looked up again at 23:55 for a new trip of the next day.

const asMs = (at) => (typeof at === "number" ? at : at instanceof Date ? at.getTime() : Date.parse(at));

/** The offset to read a moment of this device's clock with: the one read when it was taken
 *  (``then``: kept with it, as ``queue.js``'s ``clockNow`` keeps it), else the one read now;
 *  neither known (no answer yet), none: this device's clock is all there is. The other way
 *  round for now (``leadNow``): the page has had no answer since it was loaded, the one kept
 *  with the moment stands (this device's clock taken as not set since). */
const leadThen = (then) => then ?? serviceOffset() ?? 0;
const leadNow = (then) => serviceOffset() ?? then ?? 0;

/** The services' clock now, as this page reads it (``now``: this device's; ``then``: an offset
 *  kept from before, for when the page has read none yet). */
export function servicesNow(now = Date.now(), then = null) {
  return new Date(asMs(now) + leadNow(then));
}

/** The center's day (``YYYY-MM-DD``) today, on the services' clock. */
export function centerDay(now = Date.now()) {
  return dayIn(centerZone(), servicesNow(now));
}

/** Whether ``at``, a moment of this device's clock (a Date, its ISO text or ms) read with the
 *  services' clock ``offset`` ahead of it (null: not known then), fell on a center's day
 *  before today's (an unreadable moment: yes). ``now``: this device's clock. */
export function beforeCenterToday(at, offset = null, now = Date.now()) {
  const when = asMs(at);
  if (Number.isNaN(when)) return true;
  return dayIn(centerZone(), new Date(when + leadThen(offset))) < dayIn(centerZone(), servicesNow(now, offset));
}

/** How long from ``now`` (this device's clock) until the center's next day begins on the
 *  services' clock (a second past its midnight), at most an hour: a timer is then set again,
 *  so a tablet that slept or had its clock changed meanwhile is caught up within the hour
 *  (and at once when the services' clock is read anew: ``onServicesClock``). */
export function untilCenterDayEnd(now = Date.now()) {
  const at = servicesNow(now);
  const parts = Object.fromEntries(new Intl.DateTimeFormat("en-GB", {
    timeZone: centerZone(), hourCycle: "h23", hour: "2-digit", minute: "2-digit", second: "2-digit",
  }).formatToParts(at).map((p) => [p.type, Number(p.value)]));
  const into = ((parts.hour * 60 + parts.minute) * 60 + parts.second) * 1000 + at.getMilliseconds();
  return Math.min(24 * 3600 * 1000 - into + 1000, 3600 * 1000);
}

/** The center's today, as a Date at local midnight of that calendar day (for day arithmetic
 *  with ``setDate``, and ``isoDay`` back). */
export function centerTodayDate() {
  const [y, m, d] = centerDay().split("-").map(Number);
  return new Date(y, m - 1, d);
}

/** ``YYYY-MM-DD`` of a Date in the browser's zone (the counter's). */
export function isoDay(d) {
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}
