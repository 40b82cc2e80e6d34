// Where the case stands, in one strip under its head: urgency, due date (办结时限), escalations
// for help (帮办), referrals awaiting a reply, handovers (首问负责制). Read from the case as intake
// has it (GET /cases/{id}: the read model's columns and the timeline); what the case does not
// have is not shown, so a strip of an ordinary case holds its urgency and due date only.

import { fmtDate, h, isoDay, t } from "/ui/shared/ui.js";

const last = (timeline, type) => timeline.filter((e) => e.type === type).at(-1)?.payload;

function chip(kind, text, tone = "") {
  return h("li", { class: `badge ${tone}`, dataset: { state: kind } }, text);
}

/** The strip's items for ``view`` (``GET /cases/{id}``); ``today``: ``YYYY-MM-DD``. */
export function caseState(view, today = isoDay(new Date())) {
  const timeline = view.timeline || [];
  const out = [];
  const urgency = view.urgency || last(timeline, "ConcernsNoted")?.urgency;
  if (urgency) {
    const tone = { critical: "red", high: "amber", low: "" }[urgency] ?? "blue";
    out.push(chip("urgency", `${t("state_urgency")}：${t(`urgency_${urgency}`)}`, tone));
  }
  const due = view.due_on ?? last(timeline, "CaseDueDateSet")?.due_on;
  if (due) {
    const overdue = view.status !== "resolved" && due < today;
    out.push(chip("due", t(overdue ? "state_due_overdue" : "state_due", { day: fmtDate(due) }),
      overdue ? "red" : due === today && view.status !== "resolved" ? "amber" : "green"));
  } else if (view.status !== "resolved") {
    out.push(chip("due", t("state_due_none")));
  }
  const escalated = timeline.filter((e) => e.type === "ActionTaken" && e.payload.kind === "escalated").length;
  if (escalated) out.push(chip("escalated", t("state_escalated", { n: escalated }), "violet"));
  for (const e of timeline.filter((x) => x.type === "ActionTaken" && x.payload.kind === "referred")) {
    out.push(chip("referred", t("state_referred", { to: e.payload.referred_to || "—" }), "amber"));
  }
  const handed = timeline.filter((e) => e.type === "CaseHandedOver");
  if (handed.length) {
    const p = handed.at(-1).payload;
    const to = p.to_clerk_id || p.to_team || p.to || "—";
    out.push(chip("handed", t("state_handed", { to }), "blue"));
    out.push(chip("first", t("state_handed_from", { from: view.first_clerk_id || view.clerk_id })));
  }
  return out;
}

export function renderCaseState(el, view) {
  const items = view ? caseState(view) : [];
  el.hidden = items.length === 0;
  el.replaceChildren(...items);
}
