// The supervisor's board: figures from feedback's /figures, rectifications from
// /rectifications, the follow-up worklist through feedback's /board/worklist (which asks the
// follow-up service with the same token). Polled every few seconds: what happens at the counters
// shows up without a reload.

import {
  ApiError, NetworkError, api, applyI18n, centerDay, fmtDate, fmtTime, h, initLang, newKey,
  onLangChange, refusalWords, servicesNow, t,
} from "/ui/shared/ui.js";
import { currentSession, setupSignIn, showSignIn, signOut } from "/ui/shared/signin.js";

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
const SVG = "http://www.w3.org/2000/svg";
const RATES = [
  ["resolution_rate", "#1f4fd1"], ["emotion_defused_rate", "#7a3db8"],
  ["satisfaction_rate", "#177245"], ["response_rate", "#d97706"],
];
// What a center aims for (the handbook: resolution and defused above 98 %, satisfaction 100 %).
const TARGETS = { resolution_rate: 0.98, declared_resolution_rate: 0.98, emotion_defused_rate: 0.98, satisfaction_rate: 1.0, response_rate: 0.8,
  on_time_rate: 1.0, on_the_spot_rate: 0.8 };

const SHOWN = 4; // items per worklist column; the rest are counted
const board = $("#board");
const every = Math.max(1, Number(board.dataset.every) || 5) * 1000;
let timer = null;
let data = { daily: null, month: null, rect: null, appeals: null, worklist: null, at: null, stale: false };
// Rectifications whose outcome or appeal form is open: a refresh leaves them as typed.
const editing = new Set();
let previous = {};

// The center's calendar day (which day's figures and worklist the board shows) and "late" are
// judged on the services' clock (ui.js: ``centerDay``, ``servicesNow``), not the wall screen's:
// a screen 10 minutes fast turned the board to the next day's figures at 23:50.
function today() {
  return centerDay();
}

function addDays(day, n) {
  const d = new Date(`${day}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

function pct(rate) {
  if (rate === null || rate === undefined) return t("no_data");
  const value = Math.round(rate * 1000) / 10;
  return `${Number.isInteger(value) ? value : value.toFixed(1)}%`;
}

// -- fetching -----------------------------------------------------------------------------------

async function refresh() {
  const s = currentSession();
  if (!s) return signedOut(t("signin_expired"));
  const day = today();
  const c = encodeURIComponent(s.center_id);
  const asks = [
    api(`/figures?period=day&from=${addDays(day, -29)}&to=${day}&center_id=${c}`),
    api(`/figures?period=month&from=${day.slice(0, 8)}01&to=${day}&center_id=${c}`),
    api(`/rectifications?center_id=${c}&status=open&limit=50`),
    api(`/board/worklist?center_id=${c}`),
    api(`/rectifications?center_id=${c}&status=appealed&limit=50`),
  ];
  const [daily, month, rect, worklist, appeals] = await Promise.allSettled(asks);
  const results = [daily, month, rect, worklist, appeals];
  if (results.some((r) => r.status === "rejected" && r.reason instanceof ApiError && r.reason.status === 401)) {
    return signedOut(t("signin_expired"));
  }
  const offline = results.every((r) => r.status === "rejected" && r.reason instanceof NetworkError);
  data.stale = offline;
  if (!offline) data.at = new Date();
  const keep = (r, old) => (r.status === "fulfilled" ? r.value : (r.reason instanceof NetworkError ? old : { error: r.reason }));
  data = { ...data, daily: keep(daily, data.daily), month: keep(month, data.month), rect: keep(rect, data.rect), worklist: keep(worklist, data.worklist), appeals: keep(appeals, data.appeals) };
  render();
  return undefined;
}

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(async () => { try { await refresh(); } finally { if (currentSession()) schedule(); } }, every);
}

// -- rendering ----------------------------------------------------------------------------------

function rowOf(response, day) {
  return response?.rows?.find((r) => r.period_start === day) || null;
}

function renderKpis() {
  const day = data.daily?.as_of || today();
  const todayRow = rowOf(data.daily, day);
  const monthRow = data.month?.rows?.[0] || null;
  for (const tile of $$(".kpi")) {
    const name = tile.dataset.fig;
    const now = todayRow ? todayRow[name] : null;
    const mon = monthRow ? monthRow[name] : null;
    let big; let of = ""; let bar = 0; let monText; let monOf = "";
    if (name === "visits") {
      big = String(now ?? 0);
      monText = String(mon ?? 0);
      of = t("yesterday", { n: rowOf(data.daily, addDays(day, -1))?.visits ?? 0 });
      const max = Math.max(1, ...(data.daily?.rows || []).map((r) => r.visits || 0));
      bar = (now ?? 0) / max;
      tile.classList.remove("good", "warn", "bad");
    } else {
      const rate = now?.rate ?? null;
      big = pct(rate);
      of = now && now.denominator ? t("of", { n: now.numerator, d: now.denominator }) : "";
      bar = rate ?? 0;
      monText = pct(mon?.rate ?? null);
      monOf = mon && mon.denominator ? t("of", { n: mon.numerator, d: mon.denominator }) : "";
      const target = TARGETS[name];
      tile.classList.toggle("good", rate !== null && rate >= target);
      tile.classList.toggle("warn", rate !== null && rate < target && rate >= target - 0.1);
      tile.classList.toggle("bad", rate !== null && rate < target - 0.1);
    }
    const part = (p) => $(`[data-part="${p}"]`, tile);
    if (previous[name] !== undefined && previous[name] !== big + monText) {
      tile.classList.remove("flash");
      void tile.offsetWidth; // restart the animation
      tile.classList.add("flash");
    }
    previous[name] = big + monText;
    part("today").textContent = big;
    part("today-of").textContent = of;
    part("bar").style.width = `${Math.round(Math.min(1, bar) * 100)}%`;
    part("month").textContent = monText;
    part("month-of").textContent = monOf;
    tile.dataset.today = big;
    tile.dataset.month = monText;
  }
}

function svg(tag, attrs = {}, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

const W = 640; const H = 230; const L = 40; const R = 12; const T = 14; const B = 28;

function days30() {
  const end = data.daily?.as_of || today();
  return Array.from({ length: 30 }, (_, i) => addDays(end, i - 29));
}

function xLabels(el, days, x) {
  days.forEach((d, i) => {
    if (i % 7 === 1 || i === days.length - 1) {
      const last = i === days.length - 1;
      el.append(svg("text", { x: x(i), y: H - 8, "text-anchor": last ? "end" : "middle", class: "axis" }, d.slice(5).replace("-", "/")));
    }
  });
}

/** A top for the axis: four equal steps of 1, 2, 5, 10, 20, 50 … */
function niceMax(v) {
  const raw = Math.max(1, v) / 4;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * p).find((m) => m >= raw);
  return Math.max(4, Math.ceil(step) * 4);
}

function renderVisits() {
  const el = $("#chart-visits");
  const days = days30();
  const byDay = new Map((data.daily?.rows || []).map((r) => [r.period_start, r.visits || 0]));
  const values = days.map((d) => byDay.get(d) || 0);
  const max = niceMax(Math.max(...values));
  const bw = (W - L - R) / days.length;
  const y = (v) => T + (H - T - B) * (1 - v / max);
  el.replaceChildren();
  for (let k = 0; k <= 4; k += 1) {
    const v = (max / 4) * k;
    el.append(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }));
    el.append(svg("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", class: "axis" }, v));
  }
  values.forEach((v, i) => {
    const top = y(v);
    el.append(svg("rect", {
      x: L + i * bw + bw * 0.18, y: top, width: bw * 0.64, height: Math.max(0, H - B - top), rx: 2,
      class: `bar${i === days.length - 1 ? " today" : ""}`,
    }, undefined));
    if (v && (i === days.length - 1 || v === Math.max(...values))) {
      el.append(svg("text", { x: L + i * bw + bw / 2, y: top - 4, "text-anchor": "middle", class: "val" }, v));
    }
  });
  xLabels(el, days, (i) => L + i * bw + bw / 2);
  el.setAttribute("aria-label", `${t("chart_visits")}: ${values.join(", ")}`);
}

function renderRates() {
  const el = $("#chart-rates");
  const days = days30();
  const byDay = new Map((data.daily?.rows || []).map((r) => [r.period_start, r]));
  const all = [];
  for (const [name] of RATES) for (const d of days) { const r = byDay.get(d)?.[name]?.rate; if (r !== null && r !== undefined) all.push(r); }
  const least = all.length ? Math.min(...all) : 1;
  const lo = [0.8, 0.6, 0].find((l) => l <= least); // ticks of 5, 10 or 25 points
  const x = (i) => L + ((W - L - R) * i) / (days.length - 1);
  const y = (v) => T + (H - T - B) * (1 - (v - lo) / (1 - lo));
  el.replaceChildren();
  for (let k = 0; k <= 4; k += 1) {
    const v = lo + ((1 - lo) / 4) * k;
    el.append(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }));
    el.append(svg("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", class: "axis" }, `${Math.round(v * 100)}%`));
  }
  if (!all.length) {
    el.append(svg("text", { x: (W + L) / 2, y: H / 2, "text-anchor": "middle", class: "empty" }, t("chart_empty")));
  }
  for (const [name, color] of RATES) {
    let path = "";
    days.forEach((d, i) => {
      const r = byDay.get(d)?.[name]?.rate;
      if (r === null || r === undefined) return;
      path += `${path ? "L" : "M"}${x(i).toFixed(1)},${y(r).toFixed(1)}`;
      el.append(svg("circle", { cx: x(i), cy: y(r), r: 3.2, fill: color }));
    });
    if (path) el.append(svg("path", { d: path, fill: "none", stroke: color, "stroke-width": 2, "stroke-linejoin": "round" }));
  }
  xLabels(el, days, x);
  $("#legend").replaceChildren(...RATES.map(([name, color]) => h("span", {}, swatch(color), t(`fig_${name}`))));
}

/** A legend's colour square: set through the CSSOM, which the page's policy allows (a style
 * attribute it does not). */
function swatch(color) {
  const el = h("i");
  el.style.background = color;
  return el;
}

function renderWorklist() {
  const wl = data.worklist;
  const note = $("#wl-note");
  const lists = { cases: [], due_today: [], overdue: [], escalated: [], home_visits: [], help_tasks: [], referrals: [] };
  // 帮办 and 派单 open and overdue: the center's figures beside the lists.
  for (const [id, key, figure] of [["#wl-help", "help_summary", "escalations"], ["#wl-referrals", "referral_summary", "referrals"]]) {
    const badge = $(id);
    const counts = wl && !wl.error ? wl[figure] : null;
    badge.hidden = !counts;
    badge.textContent = counts ? t(key, counts) : "";
    badge.className = `badge ${counts?.overdue ? "red" : "amber"}`;
  }
  const parked = $("#wl-parked");
  parked.hidden = !(wl && !wl.error && wl.parked_rules > 0);
  parked.textContent = parked.hidden ? "" : t("wl_parked", { n: wl.parked_rules });
  if (wl && !wl.error) {
    note.textContent = "";
    // Open cases overdue, due soon or critical (follow-up's worklist): critical first.
    lists.cases = wl.cases || [];
    lists.due_today = wl.due_today || [];
    lists.escalated = (wl.overdue || []).filter((f) => f.status === "escalated");
    lists.overdue = (wl.overdue || []).filter((f) => f.status !== "escalated");
    lists.home_visits = wl.home_visits || []; // the team's rounds, whenever due
    lists.help_tasks = wl.help_tasks || [];
    lists.referrals = wl.referrals_waiting || [];
  } else if (wl?.error) {
    note.textContent = wl.error.status === 403 ? t("forbidden") : t("wl_unavailable");
  }
  for (const [name, items] of Object.entries(lists)) {
    $(`[data-count="${name}"]`).textContent = items.length;
    const ul = $(`[data-list="${name}"]`);
    const special = { cases: caseItem, help_tasks: helpItem, referrals: referralItem }[name];
    const shown = items.slice(0, SHOWN).map((f) => special ? special(f) : h("li", { dataset: { id: f.follow_up_id } },
      h("div", { class: "r" }, t(`reason_${f.reason}`), f.priority === "high" ? h("span", { class: "badge red" }, t("urgent")) : null,
        // A task without contact: the resident has not agreed to be called, texted or visited.
        f.contact === false ? h("span", { class: "badge amber" }, t("no_contact")) : null),
      h("div", { class: "m" }, `${t("due")} ${dayShown(f.due_on, f.basis, JUDGED.followup(f))} · ${t("assigned")} ${f.escalated_to || f.assigned_clerk || f.assigned_team || ""}`),
      f.case_id ? h("div", { class: "m" }, `${t("case")} ${String(f.case_id).slice(0, 8)}`) : null));
    if (items.length > SHOWN) shown.push(h("li", { class: "more" }, t("more", { n: items.length - SHOWN })));
    ul.replaceChildren(...(items.length ? shown : [h("li", { class: "none" }, t("wl_empty"))]));
  }
}

/** A day or moment as the board shows it: one worked out on a year without a published
 *  holiday schedule (``basis`` provisional) says it may move (docs/calendar.md), unless it
 *  cannot: ``judged``, the date did its work (a follow-up due, missed or escalated; a help task
 *  escalated; a referral overdue; a case or a rectification past its day) and keeps its day
 *  whatever the published schedule says (docs/calendar.md, "What keeps its day"). */
export function dayShown(value, basis, judged = false) {
  return basis === "provisional" && !judged ? `${fmtDate(value)} ${t("provisional")}` : fmtDate(value);
}

/** Whether the date of a board item did its work and keeps its day, by kind (the worklist's
 *  ``*_kept``: kept by a published schedule already). */
export const JUDGED = {
  followup: (f) => f.status !== "scheduled" || Boolean(f.due_kept),
  help: (x) => Boolean(x.escalated_to) || Boolean(x.deadline_kept),
  referral: (x) => x.status === "overdue" || Boolean(x.reply_due_kept),
  // A case's due date: ``due_may_move`` (provisional, counted from the item's days, not past);
  // a typed one (promised, a deadline, moved by hand) keeps its day, provisional or not.
  case: (x) => (x.due_may_move === undefined ? Boolean(x.overdue) : !x.due_may_move),
  rect: (x) => Boolean(x.overdue) || x.status !== "open",
};

/** A help task (帮办): its owner, status and deadline, red once past it. */
function helpItem(task) {
  const late = new Date(task.deadline_at) < servicesNow();
  return h("li", { dataset: { task: task.task_id } },
    h("div", { class: "r" }, `${t("case")} ${String(task.case_id || "").slice(0, 8)}`,
      late || task.escalated_to ? h("span", { class: "badge red" }, t("overdue")) : null),
    h("div", { class: "m" }, `${t("due")} ${dayShown(task.deadline_on, task.basis, JUDGED.help(task))} · ${t("assigned")} ${task.escalated_to || task.owner_clerk || task.owner_team || ""}`));
}

/** A referral (派单) still without a reply: where it went and by when, red once overdue. */
function referralItem(r) {
  const late = r.status === "overdue" || new Date(r.reply_due_at) < servicesNow();
  return h("li", { dataset: { referral: r.referral_id } },
    h("div", { class: "r" }, `${t("unit")} ${r.unit_name}`,
      late ? h("span", { class: "badge red" }, t("overdue")) : null),
    h("div", { class: "m" }, `${t("reply_due")} ${dayShown(r.reply_due_at, r.basis, JUDGED.referral(r))} · ${t("case")} ${String(r.case_id || "").slice(0, 8)}`));
}

/** An open case on the worklist: its urgency, whether it is overdue, its due date (办结时限). */
function caseItem(c) {
  return h("li", { dataset: { case: c.case_id } },
    h("div", { class: "r" }, `${t("case")} ${String(c.case_id).slice(0, 8)}`,
      c.urgency === "critical" ? h("span", { class: "badge red" }, t("critical"))
        : c.urgent ? h("span", { class: "badge amber" }, t("urgent")) : null,
      c.overdue ? h("span", { class: "badge red" }, t("overdue")) : null),
    h("div", { class: "m" }, `${t("case_due")} ${c.due_on ? dayShown(c.due_on, c.due_basis, JUDGED.case(c)) : t("no_data")} · ${t("assigned")} ${c.clerk_id}`));
}

/** A rectification's summary in the reader's words: the resident's comment, then the aspects
 *  marked low (the service writes them as "[low marks: listened, ...]"). */
function summaryText(summary) {
  const found = summary.match(/^(.*?)\s*\[low marks: ([^\]]+)\]\s*$/s);
  if (!found) return summary;
  const aspects = found[2].split(",").map((a) => t(`aspect_${a.trim()}`)).join(t("list_sep"));
  return [found[1], t("low_marks", { aspects })].filter(Boolean).join(" · ");
}

const TRACKS = ["immediate", "limited", "explain"];
const OUTCOMES = ["rectified", "explained", "not_rectifiable"];

/** One write from the board, then a refresh; the note under the tracks says how it went. */
async function write(id, path, body) {
  const note = $("#rect-note");
  try {
    await api(`/rectifications/${id}/${path}`, { method: "POST", body, key: newKey("board") });
    editing.delete(id);
    editing.delete(`appeal:${id}`);
    note.textContent = t("saved");
  } catch (err) {
    note.textContent = t("failed", { message: refusalWords(err) });
    return;
  }
  await refresh();
}

function outcomeForm(r) {
  const form = h("form", { class: "outcome", dataset: { form: "outcome" } },
    h("select", { name: "outcome", "aria-label": t("record_outcome") },
      ...OUTCOMES.map((o) => h("option", { value: o }, t(`outcome_${o}`)))),
    h("input", { type: "text", name: "actions", required: true, maxlength: 4000, "aria-label": t("actions"), placeholder: t("actions") }),
    h("button", { class: "btn btn-primary btn-sm", type: "submit" }, t("save")),
    h("button", { class: "btn btn-secondary btn-sm", type: "button", onclick: () => { editing.delete(r.rectification_id); renderRectifications(true); } }, t("cancel")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const actions = form.elements.actions.value.trim();
    if (!actions) { form.elements.actions.focus(); return; }
    write(r.rectification_id, "outcome", { outcome: form.elements.outcome.value, actions });
  });
  return form;
}

function rectItem(r) {
  const open = r.status === "open";
  return h("li", { class: r.overdue ? "overdue" : "", dataset: { id: r.rectification_id, case: r.case_id, track: r.track } },
    h("div", { class: "h" },
      h("span", { class: `badge ${r.rating === "very_dissatisfied" ? "red" : "amber"}` }, t(`level_${r.rating}`)),
      h("span", { class: `track track-${r.track}`, dataset: { part: "track" } }, t(`track_${r.track}`)),
      r.named ? h("span", { class: "badge" }, t("named")) : null,
      r.appeal === "pending" ? h("span", { class: "badge" }, t("appeal_pending")) : null,
      r.overdue ? h("span", { class: "badge red" }, t("overdue")) : null,
      h("span", { class: "spacer" }),
      h("span", { class: "muted small", dataset: { part: "deadline" } }, t("rect_deadline", { date: dayShown(r.deadline_on, r.basis, JUDGED.rect(r)) }))),
    (r.reason_tags || []).length ? h("div", { class: "tags" },
      ...r.reason_tags.map((tag) => h("span", { class: "tag" }, tag))) : null,
    r.summary ? h("div", { class: "s" }, summaryText(r.summary)) : null,
    h("div", { class: "m" }, `${t("rect_opened", { date: fmtDate(r.opened_at) })} · ${t("case")} ${String(r.case_id).slice(0, 8)}`),
    open ? h("div", { class: "acts" },
      // A missed deadline stays missed: no triage counts it again (409 deadline_missed).
      ...(r.overdue ? [] : [h("span", { class: "muted small" }, t("triage")),
        ...TRACKS.map((track) => h("button", {
          class: `btn btn-sm ${r.track === track ? "btn-primary" : "btn-secondary"}`, type: "button",
          dataset: { triage: track }, "aria-pressed": r.track === track ? "true" : "false",
          onclick: () => write(r.rectification_id, "triage", { track }),
        }, t(`track_${track}`)))]),
      h("span", { class: "spacer" }),
      editing.has(r.rectification_id) ? null : h("button", {
        class: "btn btn-secondary btn-sm", type: "button", dataset: { action: "outcome" },
        onclick: () => { editing.add(r.rectification_id); renderRectifications(true); },
      }, t("record_outcome"))) : null,
    open && editing.has(r.rectification_id) ? outcomeForm(r) : null);
}

function appealItem(r) {
  const form = h("form", { class: "decide", dataset: { form: "appeal" } },
    h("select", { name: "grounds", "aria-label": t("uphold") },
      h("option", { value: "malicious" }, t("grounds_malicious")),
      h("option", { value: "mistaken" }, t("grounds_mistaken"))),
    h("input", { type: "text", name: "reasons", required: true, maxlength: 2000, "aria-label": t("appeal_reasons"), placeholder: t("appeal_reasons") }),
    h("button", { class: "btn btn-primary btn-sm", type: "submit", value: "upheld", dataset: { decide: "upheld" } }, t("uphold")),
    h("button", { class: "btn btn-secondary btn-sm", type: "submit", value: "rejected", dataset: { decide: "rejected" } }, t("reject")));
  // From the first touch of any field (the grounds chosen before the reasons are typed), a
  // refresh leaves the form as it is: it rebuilt the list and put the grounds back to the
  // first option, so an appeal could be upheld on grounds the supervisor had not chosen.
  const hold = () => editing.add(`appeal:${r.rectification_id}`);
  for (const type of ["focusin", "input", "change"]) form.addEventListener(type, hold);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const decision = event.submitter?.value || "rejected";
    const reasons = form.elements.reasons.value.trim();
    if (!reasons) { form.elements.reasons.focus(); return; }
    write(r.rectification_id, "appeal/decision", decision === "upheld"
      ? { decision, grounds: form.elements.grounds.value, reasons } : { decision, reasons });
  });
  return h("li", { dataset: { id: r.rectification_id, case: r.case_id } },
    h("div", { class: "h" },
      h("span", { class: `badge ${r.rating === "very_dissatisfied" ? "red" : "amber"}` }, t(`level_${r.rating}`)),
      h("span", { class: "muted small" }, t("appeal_by", { who: r.appealed_by || "" }))),
    h("div", { class: "s" }, r.appeal_reasons || ""),
    r.summary ? h("div", { class: "m" }, summaryText(r.summary)) : null,
    form);
}

function renderRectifications(force = false) {
  const rect = data.rect;
  const ul = $("#rect-list");
  if (!rect || rect.error) {
    ul.replaceChildren(h("li", { class: "none" }, rect?.error?.status === 403 ? t("forbidden") : t("rect_empty")));
    return;
  }
  $("#rect-open").textContent = rect.open;
  $("#rect-overdue").textContent = rect.overdue;
  for (const [track, n] of Object.entries(rect.by_track || {})) {
    const badge = $(`[data-track-count="${track}"] b`);
    if (badge) badge.textContent = n;
  }
  $("#appeals-waiting").textContent = rect.appeals_waiting ?? 0;
  $("#revisits-waiting").textContent = rect.revisits_waiting ?? 0;
  if (editing.size && !force) return; // a form is being filled in: leave it as it is
  ul.replaceChildren(...(rect.items.length ? rect.items.map(rectItem) : [h("li", { class: "none" }, t("rect_empty"))]));
  const appeals = data.appeals;
  $("#appeal-list").replaceChildren(...(appeals && !appeals.error && appeals.items.length
    ? appeals.items.map(appealItem) : [h("li", { class: "none" }, t("appeals_empty"))]));
}

function renderLive() {
  const el = $("#live");
  el.hidden = !data.at;
  if (!data.at) return;
  el.textContent = t(data.stale ? "live_stale" : "live", { time: fmtTime(data.at) });
  el.className = `net${data.stale ? " offline" : ""}`;
}

function render() {
  renderKpis();
  renderVisits();
  renderRates();
  renderWorklist();
  renderRectifications();
  renderLive();
}

// -- sign-in and start ----------------------------------------------------------------------------

function signedOut(note) {
  clearTimeout(timer);
  $("#board").hidden = true;
  $("#sign-out").hidden = true;
  $("#who").hidden = true;
  $("#live").hidden = true;
  showSignIn(note);
}

// -- pairing a rating pad: a code for one window, typed once on the tablet at /pad ----------------

const WINDOWS = JSON.parse(document.getElementById("windows")?.textContent || "{}");

function offerPadWindows(s) {
  const windows = WINDOWS[s.center_id] || WINDOWS["*"] || {};
  $("#pad-window").replaceChildren(...Object.entries(windows).map(([id, label]) => h("option", { value: id }, label)));
}

async function makePadCode(event) {
  event.preventDefault();
  const out = $("#pad-code");
  out.hidden = false;
  try {
    const pairing = await api("/pads/pairings", { method: "POST", body: { counter_id: $("#pad-window").value } });
    out.replaceChildren(h("b", {}, pairing.code), " ", t("pad_code_until", { time: fmtTime(pairing.expires_at) }));
  } catch (err) {
    out.textContent = t("pad_code_failed", { message: refusalWords(err) });
  }
}

async function start(s) {
  offerPadWindows(s);
  $("#signin").hidden = true;
  $("#board").hidden = false;
  $("#sign-out").hidden = false;
  $("#who").hidden = false;
  $("#who").replaceChildren(h("b", {}, s.clerk_id), h("br"), `${s.center_id} · ${t(`role_${s.role}`)}`);
  await refresh();
  schedule();
}

initLang();
onLangChange(() => { if (currentSession()) { render(); const s = currentSession(); $("#who").replaceChildren(h("b", {}, s.clerk_id), h("br"), `${s.center_id} · ${t(`role_${s.role}`)}`); } });
setupSignIn({
  roles: ["supervisor"],
  probe: (s) => api(`/rectifications?center_id=${encodeURIComponent(s.center_id)}&limit=1`),
  onSignedIn: start,
  onSignedOut: signedOut,
});
$("#sign-out").addEventListener("click", async () => { if (!await signOut()) signedOut(); });
$("#pad-form").addEventListener("submit", makePadCode);
if (currentSession()) start(currentSession());
else signedOut();
applyI18n();
