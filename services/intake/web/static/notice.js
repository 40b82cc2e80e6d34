// The one-time notice (一次性告知): what was agreed, the documents to bring, the due date, who
// served and the center's phone, printed in Chinese on A5 (or A4) by the browser's own print.
// Intake assembles it (GET /cases/{id}/notice: nothing of the resident's); the page adds only
// the surname it already shows (the first character of the masked name), never more.

import { api, centerZone, h } from "/ui/shared/ui.js";

const ZH = JSON.parse(document.getElementById("strings")?.textContent || '{"zh":{}}').zh || {};
const ELIGIBILITY = { eligible: "eligibility_eligible", not_eligible: "eligibility_not_eligible", more_documents: "eligibility_more_documents" };
const OUTCOME = { resolved: "outcome_resolved", partly_resolved: "outcome_partly_resolved", cannot_be_resolved: "outcome_cannot_be_resolved" };

/** The notice's words: always Chinese, whatever the clerk's screen shows. */
function zh(key, vars = {}) {
  let text = ZH[key] ?? key;
  for (const [k, v] of Object.entries(vars)) text = text.replaceAll(`{${k}}`, v);
  return text;
}

function day(iso) {
  const [y, m, d] = String(iso).slice(0, 10).split("-").map(Number);
  return `${y}年${m}月${d}日`;
}

function month(iso) {
  const [y, m] = String(iso).slice(0, 10).split("-").map(Number);
  return `${y}年${m}月`;
}

/** A moment on the center's clock (the page's ``data-tz``), whatever zone the screen is on. */
function moment(iso) {
  const parts = Object.fromEntries(new Intl.DateTimeFormat("en-GB", {
    timeZone: centerZone(), year: "numeric", month: "numeric", day: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  }).formatToParts(new Date(iso)).map((x) => [x.type, x.value]));
  return `${parts.year}年${parts.month}月${parts.day}日 ${parts.hour}:${parts.minute}`;
}

/** The surname of a masked name (王*英 -> 王); nothing for anything else. */
export function surnameOf(masked) {
  const first = (masked || "").trim().charAt(0);
  return first && first !== "*" ? first : "";
}

function row(label, ...content) {
  return h("div", { class: "nt-row" }, h("dt", {}, label), h("dd", {}, ...content));
}

function list(items) {
  return h("ul", { class: "nt-list" }, ...items.map((x) => h("li", {}, x)));
}

/** Whether the notice's due date may still move (``due_may_move``: provisional, counted from
 *  the item's days, not past); an intake from before it says only the basis. */
const mayMove = (notice) => notice.due_may_move ?? notice.due_basis === "provisional";

/** The sheet for ``notice`` (intake's answer), addressed by ``surname`` when known. */
export function renderNotice(sheet, notice, surname = "") {
  // A due date counted on a year without a published holiday schedule may move: the resident
  // takes the paper home, so the paper says so (docs/calendar.md, "What provisional means").
  const due = notice.due_on ? day(notice.due_on) + (mayMove(notice) ? zh("nt_due_provisional") : "")
    : notice.typical_days === 0 ? zh("nt_due_spot")
      : notice.typical_days ? zh("nt_due_typical", { n: notice.typical_days }) : null;
  const clerk = notice.clerk_name ? `${notice.clerk_name}（${zh("nt_clerk_no", { id: notice.clerk_id })}）`
    : zh("nt_clerk_no", { id: notice.clerk_id });
  const rows = [
    row(zh("nt_item"), notice.item_name_zh),
    notice.eligibility ? row(zh("nt_eligibility"), zh(ELIGIBILITY[notice.eligibility] || notice.eligibility)) : null,
    notice.status === "resolved" && notice.outcome ? row(zh("nt_outcome"), zh(OUTCOME[notice.outcome] || notice.outcome)) : null,
    notice.plain_words ? row(zh("nt_plain"), notice.plain_words) : null,
    notice.promised ? row(zh("nt_promised"), notice.promised) : null,
    row(zh("nt_documents"), notice.missing_documents.length ? list(notice.missing_documents) : zh("nt_documents_none")),
    due ? row(zh("nt_due"), due) : null,
    notice.deadlines.length ? row(zh("nt_deadlines"), list(notice.deadlines.map((d) => `${day(d.due_on)}　${d.description}`))) : null,
    notice.obligations.length ? row(zh("nt_obligations"), list(notice.obligations.map((o) => zh("nt_obligation_row", {
      cadence: zh(`cadence_${o.cadence}`), description: o.description, day: day(o.next_due_on),
    }) + (o.tracked_from ? zh("nt_obligation_since", { day: day(o.tracked_from) }) : "")))) : null,
    ...notice.plans.map((plan) => row(zh("nt_plan"), h("div", {}, plan.title, h("ol", { class: "nt-list nt-plan" },
      ...plan.steps.map((s) => h("li", { class: s.this_case ? "nt-this" : null },
        `${s.timing === "month" ? month(s.effective_on) : day(s.effective_on)}　${s.item_name_zh}${s.what ? `：${s.what}` : ""}`)))))),
    notice.policy_basis ? row(zh("nt_basis"), h("span", { class: "nt-basis" }, notice.policy_basis)) : null,
  ];
  sheet.replaceChildren(
    h("header", { class: "nt-head" },
      h("div", { class: "nt-center" }, notice.center_name),
      h("h1", {}, zh("nt_title"))),
    h("p", { class: "nt-dear" }, surname ? zh("nt_dear", { surname }) : zh("nt_dear_anon")),
    h("p", { class: "nt-lead" }, zh("nt_lead")),
    h("dl", { class: "nt-rows" }, ...rows.filter(Boolean)),
    h("footer", { class: "nt-foot" },
      h("dl", { class: "nt-rows" },
        row(zh("nt_clerk"), clerk),
        notice.center_phone ? row(zh("nt_phone"), notice.center_phone) : null,
        row(zh("nt_case"), String(notice.case_id).slice(0, 8)),
        row(zh("nt_issued"), moment(notice.issued_at))),
      h("p", {}, zh("nt_foot"))),
  );
  sheet.dataset.caseId = notice.case_id;
}

/** The page size (``@page``) lives in its own file per paper: swapped, then waited for. */
function usePaper(paper) {
  const link = document.getElementById("notice-page");
  const href = `/ui/intake/notice-${paper}.css`;
  if (link.getAttribute("href") === href) return Promise.resolve();
  return new Promise((done) => {
    link.addEventListener("load", done, { once: true });
    link.addEventListener("error", done, { once: true });
    link.setAttribute("href", href);
  });
}

/** Fetch the case's notice, lay it out, and open the browser's print (``size``: A5 or A4). */
export async function printNotice(caseId, { surname = "", size = "a5", after = null } = {}) {
  const sheet = document.getElementById("notice-sheet");
  delete sheet.dataset.ready;
  const notice = await api(`/cases/${caseId}/notice${after ? `?after=${after}` : ""}`);
  renderNotice(sheet, notice, surname);
  const paper = size === "a4" ? "a4" : "a5";
  sheet.className = `notice-sheet ${paper}`;
  await usePaper(paper);
  sheet.dataset.ready = "1";
  window.print();
  return notice;
}
