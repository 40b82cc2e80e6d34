// The resident's plan on the counter page: the linked plans a case carries a step of
// (GET /cases/{id} -> plans[].steps[]), as a timeline the clerk can hand to the resident.

import { h, lang, t } from "/ui/shared/ui.js";

function when(step) {
  if (step.timing === "month") {
    const [y, mm] = step.effective_on.split("-");
    return t("plan_month", { y, mm, m: String(Number(mm)) });
  }
  return `${step.effective_on} ${t("plan_step_from")}`;
}

function stepItem(step, caseId) {
  const name = lang() === "en" && step.name_en ? step.name_en : (step.name_zh || step.service_item);
  const where = step.case_id === caseId ? t("plan_this_case")
    : step.case_id ? t("plan_case", { id: step.case_id.slice(0, 8) }) : t("plan_not_open");
  const done = step.case_status === "resolved" ? t("plan_done") : null;
  return h("li", { class: step.case_status === "resolved" ? "done" : "upcoming",
    dataset: { seq: String(step.seq), item: step.service_item } },
    h("div", { class: "t-head" },
      h("span", { class: "t-title" }, `${step.seq}. ${name}`),
      h("span", { class: "t-time" }, when(step))),
    h("div", { class: "t-body" }, step.what),
    h("div", { class: "muted small" },
      [step.depends_on ? t("plan_after", { n: step.depends_on }) : null, where, done]
        .filter(Boolean).join(" · ")));
}

/** Show ``view.plans`` (none: the block stays hidden). */
export function renderPlan(view) {
  const block = document.querySelector("#plan-timeline");
  if (!block) return;
  const plans = view?.plans || [];
  block.hidden = plans.length === 0;
  document.querySelector("#plan-list").replaceChildren(...plans.map((p) =>
    h("div", { class: "plan", dataset: { plan: p.plan_id } },
      h("p", { class: "plan-name" }, p.title),
      h("ol", { class: "timeline plan-steps" }, ...p.steps.map((s) => stepItem(s, view.case_id))))));
}
