// What needs attention on the open case, in one strip under its head: an urgent case (high,
// critical), a due date (办结时限) reached or passed, escalations for help (帮办), referrals
// (派单) and handovers (转办, 首问负责制). Read from the case as intake has it (GET /cases/{id}:
// the read model's columns and the timeline); an ordinary case on time shows an empty strip.

import { fmtDate, h, isoDay, t } from "/ui/shared/ui.js";

const last = (timeline, type) => timeline.filter((e) => e.type === type).at(-1)?.payload;

function chip(kind, text, tone = "") {
  return h("li", { class: `badge ${tone}`, dataset: { state: kind } }, text);
}

/** The strip's items for ``view`` (``GET /cases/{id}``); ``today``: ``YYYY-MM-DD``. */
export function caseState(view, today = isoDay(new Date())) {
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
    out.push(chip("due", t(due < today ? "state_due_overdue" : "state_due_today", { day: fmtDate(due) }),
      due < today ? "red" : "amber"));
  }
  const escalated = timeline.filter((e) => e.type === "ActionTaken" && e.payload.kind === "escalated").length;
  if (escalated) out.push(chip("escalated", t("state_escalated", { n: escalated }), "violet"));
  for (const e of timeline.filter((x) => x.type === "ActionTaken" && x.payload.kind === "referred")) {
    out.push(chip("referred", t("state_referred", { to: e.payload.referred_to || "—" }), "amber"));
  }
  const handed = last(timeline, "CaseHandedOver");
  if (handed) {
    out.push(chip("handed", t("state_handed", { to: handed.to_clerk || handed.to_team || "—" }), "blue"));
    out.push(chip("first", t("state_handed_from", { from: handed.first_clerk || view.clerk_id })));
  }
  return out;
}

export function renderCaseState(el, view) {
  const items = view ? caseState(view) : [];
  el.hidden = items.length === 0;
  el.replaceChildren(...items);
}
