// A survey opened by the rating pad (``?pad=1``) goes back to the pad: a few seconds after the
// answer (or at once when the link was spent or expired), or when nobody touched it for two
// minutes (the resident left without answering).

const BACK_AFTER_ANSWER_MS = 5000;
const BACK_WHEN_IDLE_MS = 120000;
const form = document.getElementById("survey");
let idle = null;

function back(after) { setTimeout(() => location.assign("/pad"), after); }

function answered() {
  return ["thanks", "declined-live", "used-live", "expired-live"].some((id) => {
    const el = document.getElementById(id);
    return el && !el.hidden;
  });
}

if (!form || form.hidden) {
  back(BACK_AFTER_ANSWER_MS);
} else {
  const rearm = () => { clearTimeout(idle); idle = setTimeout(() => location.assign("/pad"), BACK_WHEN_IDLE_MS); };
  ["input", "pointerdown", "keydown"].forEach((type) => document.addEventListener(type, rearm));
  rearm();
  new MutationObserver(() => {
    if (answered()) { clearTimeout(idle); back(BACK_AFTER_ANSWER_MS); }
  }).observe(document.body, { attributes: true, subtree: true, attributeFilter: ["hidden"] });
}
