// The resident's answer: posted to feedback's API with the link's own token. The
// Idempotency-Key was made when the page was rendered, so pressing "send" twice, or again after
// a dropped connection, records one answer.

import { ApiError, NetworkError, api, refusalWords, t } from "/ui/shared/ui.js";

const form = document.getElementById("survey");
const submit = form.querySelector(".s-submit");
const sendError = document.getElementById("send-error");
const levelError = document.getElementById("level-error");

function show(id) {
  form.hidden = true;
  const section = document.getElementById(id);
  section.hidden = false;
  section.focus();
  window.scrollTo({ top: 0 });
}

function fail(message) {
  sendError.hidden = false;
  sendError.textContent = message;
}

// A send that did not go through. A key already used: this page's earlier send was recorded
// (its answer was lost), and the resident changed the answer before sending again; the first
// answer (or the decline) stands.
function failed(err) {
  if (err instanceof ApiError && ["survey_already_answered", "survey_declined",
                                  "idempotency_key_reused"].includes(err.code)) show("used-live");
  else if (err instanceof ApiError && err.status === 410) show("expired-live");
  else if (err instanceof NetworkError) fail(t("network"));
  else if (err instanceof ApiError && err.status === 429) fail(t("busy"));
  else fail(t("error", { message: refusalWords(err) }));
}

const reasons = document.getElementById("reasons");
const isBad = (level) => level === "dissatisfied" || level === "very_dissatisfied";

// A bad review asks why: the center's reason tags appear under the levels.
form.addEventListener("change", (e) => {
  if (e.target.name !== "level") return;
  levelError.hidden = true;
  reasons.hidden = !isBad(e.target.value);
});

// The resident would rather not rate: recorded as declined (never a good or a bad review).
document.getElementById("decline").addEventListener("click", async (event) => {
  const button = event.currentTarget;
  sendError.hidden = true;
  button.disabled = true;
  try {
    await api(`/surveys/${form.dataset.survey}/decline`, {
      method: "POST", body: { token: form.dataset.token }, key: `${form.dataset.key}-decline` });
    show("declined-live");
  } catch (err) {
    failed(err);
  } finally {
    button.disabled = false;
  }
});

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const data = new FormData(form);
  const level = data.get("level");
  if (!level) {
    levelError.hidden = false;
    form.querySelector("input[name=level]").focus();
    return;
  }
  const aspects = {};
  for (const [name, value] of data.entries()) {
    if (name.startsWith("aspect-")) aspects[name.slice(7)] = Number(value);
  }
  const body = { token: form.dataset.token, level, comment: (data.get("comment") || "").trim(), aspects };
  const verdict = data.get("verdict");
  if (verdict) body.verdict = verdict;
  if (isBad(level)) body.reason_tags = data.getAll("reason");
  sendError.hidden = true;
  submit.disabled = true;
  const label = submit.textContent;
  submit.textContent = submit.dataset.sending;
  try {
    await api(`/surveys/${form.dataset.survey}/rating`, { method: "POST", body, key: form.dataset.key });
    const bad = isBad(level);
    document.querySelector("#thanks .s-good").hidden = bad;
    document.querySelector("#thanks .s-bad").hidden = !bad;
    document.querySelector("#thanks .s-unsolved").hidden = verdict !== "not_solved";
    show("thanks");
  } catch (err) {
    failed(err);
  } finally {
    submit.disabled = false;
    submit.textContent = label;
  }
});
