// The survey waiting at the window as a QR code, for a resident who prefers their phone to the
// rating pad. Once the case is resolved the page asks intake (GET /counter/survey-qr/{id}, which
// asks feedback with the clerk's token) until the survey is there, then keeps asking while it is
// shown: once it is answered (on the pad or the phone) or no longer waits, the code goes.

import { ApiError, api, t } from "/ui/shared/ui.js";

const EVERY_MS = 2000;
const WAIT_FOR_SURVEY_MS = 120_000;

let watching = null; // {caseId, timer, until, shown}

function hide() {
  const box = document.getElementById("survey-qr");
  box.hidden = true;
  delete box.dataset.surveyId;
  document.getElementById("survey-qr-img").removeAttribute("src");
}

async function look(w) {
  if (watching !== w) return;
  let again = true;
  try {
    const qr = await api(`/counter/survey-qr/${w.caseId}`);
    const box = document.getElementById("survey-qr");
    const img = document.getElementById("survey-qr-img");
    if (box.dataset.surveyId !== qr.survey_id) {
      img.src = qr.qr_svg;
      img.alt = t("survey_qr_alt");
      box.dataset.surveyId = qr.survey_id;
    }
    box.hidden = false;
    w.shown = true;
  } catch (err) {
    // 404: not there yet (feedback asks once the resolution reached it), or, once shown,
    // answered or no longer waiting: then the code goes. 403: not this clerk's case.
    const status = err instanceof ApiError ? err.status : 0;
    if (w.shown && status === 404) { hide(); w.shown = false; again = false; }
    else if (status === 403 || status === 401) again = false;
    else again = w.shown || Date.now() <= w.until;
  }
  if (again && watching === w) w.timer = setTimeout(() => look(w), EVERY_MS);
}

/** Show the QR code of ``caseId``'s survey once there is one; ``null`` stops and hides it. */
export function watchSurvey(caseId) {
  if (watching?.caseId === caseId) return;
  if (watching) clearTimeout(watching.timer);
  watching = null;
  hide();
  if (!caseId) return;
  watching = { caseId, timer: null, until: Date.now() + WAIT_FOR_SURVEY_MS, shown: false };
  look(watching);
}
