// The sign-in step of the staff pages: paste the bearer token the API takes (``sixstep token
// issue``); its claims (sub, role, center) say who signs in. The token stays in this tab's
// sessionStorage and goes with every API call as ``Authorization: Bearer``.

import { ApiError, api, claimsOf, clearSession, h, saveSession, session, t } from "/ui/shared/ui.js";

const $ = (sel) => document.querySelector(sel);

/** Who the token says is signing in: ``{clerk_id, center_id, role, exp}`` (or ``null``). */
export function identityOf(token) {
  const c = claimsOf(token);
  if (!c.sub) return null;
  return { clerk_id: c.sub, center_id: c.center || null, role: c.role || null, exp: c.exp || null };
}

function expired(s) { return s?.exp && s.exp * 1000 < Date.now(); }

/**
 * Wire the sign-in form. ``roles``: the roles this page is for; ``probe(session)``: a cheap
 * API call the token must pass; ``onSignedIn(session)``: show the page.
 */
export function setupSignIn({ roles, probe, onSignedIn, counter = false }) {
  const form = $("#signin-form");
  const token = $("#signin-token");
  const showClaims = () => {
    const who = identityOf(token.value.trim());
    const box = $("#signin-claims");
    box.hidden = !who;
    if (who) {
      box.replaceChildren(
        h("span", {}, t("signin_as")), h("b", {}, who.clerk_id),
        who.role ? h("span", { class: "badge blue" }, t(`role_${who.role}`)) : null,
        who.center_id ? h("span", { class: "badge" }, who.center_id) : null);
    }
  };
  token.addEventListener("input", showClaims);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = $("#signin-error");
    const fail = (message) => { error.hidden = false; error.textContent = message; };
    const raw = token.value.trim();
    const who = identityOf(raw);
    if (!who) return fail(t("signin_not_token"));
    if (roles && !roles.includes(who.role)) return fail(t("signin_wrong_role", { role: t(`role_${who.role}`) }));
    if (!who.center_id) return fail(t("signin_no_center"));
    const counterField = $("#signin-counter");
    if (counter && !counterField.reportValidity()) return undefined;
    const candidate = { token: raw, ...who, counter_id: counter ? counterField.value.trim() : null };
    if (expired(candidate)) return fail(t("signin_failed", { reason: "token_expired" }));
    saveSession(candidate);
    try {
      await probe(candidate);
    } catch (err) {
      if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
        clearSession();
        return fail(t("signin_failed", { reason: err.code }));
      }
      // the network is down: the page still opens; calls wait for it
    }
    error.hidden = true;
    token.value = "";
    onSignedIn(candidate);
    return undefined;
  });
}

export function showSignIn(note) {
  $("#signin").hidden = false;
  $("#signin-note").hidden = !note;
  if (note) $("#signin-note").textContent = note;
  const s = session();
  if (s?.counter_id && $("#signin-counter")) $("#signin-counter").value = s.counter_id;
  $("#signin-token").focus();
}

/** The stored session when it is still good, else ``null``. */
export function currentSession() {
  const s = session();
  return s && s.token && !expired(s) ? s : null;
}

export { api };
