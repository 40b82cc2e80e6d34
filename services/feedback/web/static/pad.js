// The rating pad at the window. Paired once: a supervisor's 8-digit code becomes this tablet's
// pad token (kept in localStorage), which reads one thing, the window's survey now waiting.
// Idle, it shows the window and its clerk (name as configured, and 工号); when a survey waits it opens it (``?pad=1``:
// the survey comes back here after the answer); a survey once shown is not shown again.

import { ApiError, api, applyI18n, initLang, t } from "/ui/shared/ui.js";

const PAD_KEY = "sixstep.pad.v1";
const SHOWN_KEY = "sixstep.pad.shown.v1";
const POLL_MS = 1500;
const $ = (sel) => document.querySelector(sel);

function read(key, fallback) {
  try { return JSON.parse(localStorage.getItem(key)) ?? fallback; } catch { return fallback; }
}

function showPairing(message) {
  $("#idle").hidden = true;
  $("#pair-form").hidden = false;
  $("#pair-error").hidden = !message;
  $("#pair-error").textContent = message || "";
  $("#pair-code").focus();
}

async function pair(event) {
  event.preventDefault();
  const code = $("#pair-code").value.trim();
  if (!/^\d{8}$/.test(code)) { showPairing(t("pair_format")); return; }
  try {
    const pad = await api("/pads/pair", { method: "POST", body: { code } });
    localStorage.setItem(PAD_KEY, JSON.stringify(pad));
    startIdle();
  } catch (err) {
    showPairing(err instanceof ApiError && err.status === 404 ? t("pair_unknown") : t("pair_failed"));
  }
}

function startIdle() {
  const pad = read(PAD_KEY, null);
  if (!pad) { showPairing(); return; }
  $("#pair-form").hidden = true;
  $("#idle").hidden = false;
  const windows = JSON.parse(document.getElementById("windows")?.textContent || "{}");
  const name = (windows[pad.center_id] || windows["*"] || {})[pad.counter_id] || pad.counter_id;
  $("#pad-window").textContent = `${pad.center_id} · ${name}`;
  poll();
}

async function poll() {
  const pad = read(PAD_KEY, null);
  if (!pad) { showPairing(); return; }
  try {
    const answer = await fetch("/pads/next", {
      headers: { Accept: "application/json", "X-Pad-Token": pad.pad_token }, cache: "no-store",
    });
    if (answer.status === 401) { localStorage.removeItem(PAD_KEY); showPairing(t("pair_again")); return; }
    if (answer.ok) {
      const now = await answer.json();
      // The clerk's name as the staff directory has it, with the 工号; the 工号 alone if unnamed.
      $("#pad-clerk").textContent = now.clerk_name || now.clerk_id || "—";
      $("#pad-clerk-no").hidden = !now.clerk_name;
      $("#pad-clerk-no").textContent = now.clerk_name ? t("idle_clerk_no", { id: now.clerk_id }) : "";
      const shown = read(SHOWN_KEY, []);
      if (now.survey && !shown.includes(now.survey.survey_id)) {
        localStorage.setItem(SHOWN_KEY, JSON.stringify([...shown.slice(-49), now.survey.survey_id]));
        location.assign(now.survey.link);
        return;
      }
    }
  } catch { /* the network: try again */ }
  setTimeout(poll, POLL_MS);
}

initLang();
applyI18n();
$("#pair-form").addEventListener("submit", pair);
startIdle();
