// Eligibility hints on the clerk's screen (issue 20): after a lookup, the items the resident
// may be entitled to, with the rule that fired, why, and its policy basis; the clerk records
// whether the resident takes each up or not. Facts the resident declares about themselves
// (special work type, living alone, disability, chronic illness) are kept in the vault with
// their consent. This module owns the #hints-card block of counter.html; counter.js only
// announces the resident it found ("sixstep:resident").

import { ApiError, api, h, lang, newKey, onLangChange, t, toast } from "/ui/shared/ui.js";
import { refusal } from "/ui/intake/counter.js";

const $ = (sel, root = document) => root.querySelector(sel);
const words = (pair) => (pair ? (lang() === "zh" ? pair.zh : pair.en) : "");

let shownFor = null; // the resident whose hints are on the card
let hints = [];

async function load(residentId) {
  if (residentId !== shownFor) { $("#facts-form").reset(); $("#facts-note").textContent = ""; }
  shownFor = residentId;
  const card = $("#hints-card");
  card.hidden = !residentId;
  if (!residentId) { hints = []; return; }
  try {
    const answer = await api(`/residents/${residentId}/hints`, { method: "POST" });
    if (shownFor !== residentId) return; // another resident was looked up meanwhile
    hints = answer.items;
  } catch (err) {
    hints = [];
    $("#hints-note").textContent = err instanceof ApiError && err.status === 403
      ? t("hints_forbidden") : t("hints_unavailable");
  }
  render();
}

function render() {
  const list = $("#hints");
  const open = hints.filter((x) => x.status === "shown").length;
  $("#hints-count").textContent = open;
  $("#hints-count").className = `badge ${open ? "blue" : ""}`;
  if (!hints.length) {
    list.replaceChildren(h("li", { class: "muted" }, t("hints_none")));
    return;
  }
  $("#hints-note").textContent = "";
  list.replaceChildren(...hints.map((x) => h("li", { dataset: { item: x.service_item, status: x.status } },
    h("div", { class: "p-head" },
      h("span", { class: "p-item" }, lang() === "zh" ? x.name_zh : x.name_en),
      h("code", { class: "muted small" }, x.service_item)),
    h("div", { class: "p-meta hint-because" }, `${t("hints_because")}: ${words(x.because)}`),
    h("div", { class: "hint-reason" }, words(x.reason)),
    h("div", { class: "p-meta hint-basis" }, `${t("hints_basis")}: ${words(x.policy_basis)}`),
    h("div", { class: "p-meta" }, `${t("hints_rule")}: ${x.rule_id} v${x.rule_version}`),
    x.status === "shown"
      ? h("div", { class: "row" },
        h("button", { type: "button", class: "btn btn-secondary btn-sm", "data-act": "taken", onclick: () => decide(x, "taken") }, t("hints_take")),
        h("button", { type: "button", class: "btn btn-ghost btn-sm", "data-act": "dismissed", onclick: () => decide(x, "dismissed") }, t("hints_dismiss")))
      : h("span", { class: `badge ${x.status === "taken" ? "green" : ""}` }, t(`hints_${x.status}`)))));
}

async function decide(hint, what) {
  try {
    await api(`/hints/${hint.hint_id}/${what}`, { method: "POST", body: {}, key: newKey("hint") });
    hint.status = what;
    render();
    if (what === "taken") {
      toast(t("hints_taken_toast", { item: lang() === "zh" ? hint.name_zh : hint.name_en }), "green");
      const q = $("#item-q"); // offer the item for the next case
      if (q) { q.value = hint.service_item; q.dispatchEvent(new Event("input", { bubbles: true })); }
    }
  } catch (err) {
    toast(t("error_generic", { message: refusal(err) }), "red");
  }
}

async function declare(event) {
  event.preventDefault();
  const form = event.target;
  const facts = Array.from(form.querySelectorAll("input[name=fact]:checked"), (el) => el.value);
  const consent = form.elements.consent.checked;
  if (facts.length && !consent) {
    $("#facts-note").textContent = t("facts_need_consent");
    return;
  }
  try {
    await api(`/residents/${shownFor}/facts`, { method: "PUT", body: { facts, consent }, key: newKey("facts") });
    $("#facts-note").textContent = t("facts_saved");
    await load(shownFor);
  } catch (err) {
    $("#facts-note").textContent = t("error_generic", { message: refusal(err) });
  }
}

document.addEventListener("sixstep:resident", (event) => {
  if (event.detail !== shownFor) load(event.detail);
});
document.addEventListener("DOMContentLoaded", () => {
  $("#facts-form")?.addEventListener("submit", declare);
  onLangChange(render);
});
