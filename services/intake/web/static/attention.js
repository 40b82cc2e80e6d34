// What needs attention on the open case, in one strip under its head: an urgent case (high,
// critical), a due date (办结时限) reached or passed, escalations for help (帮办), referrals
// (派单) and handovers (转办, 首问负责制). Read from the case as intake has it (GET /cases/{id}:
// the read model's columns and the timeline), and, for where the help tasks and referrals
// stand, from follow-up (GET /counter/case-work/{id}, through intake); an ordinary case on time
// shows an empty strip.

import { api, centerDay, fmtDate, h, t } from "/ui/shared/ui.js";

/** The center's today (its zone from the page, on the services' clock: ui.js), not the
 *  screen's: a counter machine left on UTC is still on yesterday from midnight to 08:00 in
 *  Shanghai. */
export const centerToday = () => centerDay();

const last = (timeline, type) => timeline.filter((e) => e.type === type).at(-1)?.payload;

function chip(kind, text, tone = "") {
  return h("li", { class: `badge ${tone}`, dataset: { state: kind } }, text);
}

/** A day as the counter shows it: one counted on a year without a published holiday schedule
 *  (``basis`` provisional) says it may move, as the printed notice and the board do
 *  (docs/calendar.md, "What provisional means"), unless it cannot: ``judged``, the day did its
 *  work (a help task escalated, a referral overdue, a case past its due date) and keeps it
 *  whatever the published schedule says (docs/calendar.md, "What keeps its day"). */
export function dayShown(value, basis, judged = false) {
  return basis === "provisional" && !judged ? `${fmtDate(value)} ${t("due_provisional")}` : fmtDate(value);
}

/** The strip's items for ``view`` (``GET /cases/{id}``); ``today``: ``YYYY-MM-DD``, the
 *  center's; ``tracked``: the case's help tasks and referrals as follow-up has them (by
 *  default the ones last fetched for this case). */
export function caseState(view, today = centerToday(), tracked = null) {
  const timeline = view.timeline || [];
  const open = view.status !== "resolved";
  const out = [];
  const urgency = view.urgency || last(timeline, "ConcernsNoted")?.urgency;
  if (urgency === "critical" || urgency === "high") {
    out.push(chip("urgency", `${t("state_urgency")}：${t(`urgency_${urgency}`)}`,
      urgency === "critical" ? "red" : "amber"));
  }
  const due = view.due_on ?? last(timeline, "CaseDueDateSet")?.due_on;
  if (due && open && due <= today) {
    // Overdue, the day did its work and keeps it: shown bare, provisional or not.
    out.push(chip("due", t(due < today ? "state_due_overdue" : "state_due_today", { day: fmtDate(due) }),
      due < today ? "red" : "amber"));
  }
  tracked ??= work.caseId === view.case_id ? work : { help_tasks: [], referrals: [] };
  if (tracked.help_tasks.length) {
    for (const task of tracked.help_tasks) {
      const late = Boolean(task.escalated_to) && !["done", "handed_back", "closed"].includes(task.status);
      out.push(chip("help-task", t(late ? "state_help_late" : "state_help", {
        owner: task.owner_clerk || task.owner_team || "—", status: t(`help_${task.status}`),
        day: dayShown(task.deadline_on, task.basis, late || Boolean(task.deadline_kept)),
      }), late ? "red" : ["done", "closed"].includes(task.status) ? "green" : "violet"));
    }
  } else {
    const escalated = timeline.filter((e) => e.type === "ActionTaken" && e.payload.kind === "escalated").length;
    if (escalated) out.push(chip("escalated", t("state_escalated", { n: escalated }), "violet"));
  }
  if (tracked.referrals.length) {
    for (const r of tracked.referrals) {
      const key = { replied: "state_referred_replied", overdue: "state_referred_overdue" }[r.status] || "state_referred_due";
      out.push(chip("referral", t(key, { to: r.unit_name, day: dayShown(r.reply_due_at, r.basis, r.status === "overdue" || Boolean(r.reply_due_kept)) }),
        { replied: "green", overdue: "red" }[r.status] || "amber"));
    }
  } else {
    for (const e of timeline.filter((x) => x.type === "ActionTaken" && x.payload.kind === "referred")) {
      out.push(chip("referred", t("state_referred", { to: e.payload.referred_to || "—" }), "amber"));
    }
  }
  const handed = last(timeline, "CaseHandedOver");
  if (handed) {
    out.push(chip("handed", t("state_handed", { to: handed.to_clerk || handed.to_team || "—" }), "blue"));
    out.push(chip("first", t("state_handed_from", { from: handed.first_clerk || view.clerk_id })));
  }
  return out;
}

// -- where follow-up has the case's help tasks and referrals --------------------------------------

const AGAIN_MS = 3000; // follow-up learns of a new escalation or referral a moment after intake
let work = { caseId: null, position: null, help_tasks: [], referrals: [] };

async function loadWork(view, redraw) {
  if (work.caseId === view.case_id && work.position === view.position) return;
  const mine = work.caseId === view.case_id ? work : { help_tasks: [], referrals: [] };
  work = { caseId: view.case_id, position: view.position, help_tasks: mine.help_tasks, referrals: mine.referrals };
  const current = work;
  const fetchOnce = async () => {
    try {
      const got = await api(`/counter/case-work/${view.case_id}`);
      if (work !== current) return;
      work.help_tasks = got.help_tasks || [];
      work.referrals = got.referrals || [];
      redraw();
    } catch { /* offline, or follow-up away: the timeline's word stands */ }
  };
  const asks = view.timeline?.some((e) => e.type === "ActionTaken" && ["escalated", "referred"].includes(e.payload.kind));
  if (!asks) return;
  await fetchOnce();
  setTimeout(() => { if (work === current) fetchOnce(); }, AGAIN_MS);
}

export function renderCaseState(el, view) {
  const draw = () => {
    const items = view ? caseState(view) : [];
    el.hidden = items.length === 0;
    el.replaceChildren(...items);
  };
  draw();
  if (view?.case_id) loadWork(view, draw);
}
