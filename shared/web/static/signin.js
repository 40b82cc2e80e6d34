// The sign-in step of the staff pages. With the center's identity provider (OIDC_ISSUER): a
// button that signs in there (oidc.js); the service says who that is (``GET /auth/me``: the
// role and center mapped from the provider's claims). A pasted bearer token (``sixstep token
// issue``) works where the page offers it (no provider, or development): its claims (sub,
// role, center) say who signs in. Either way the session stays in this tab's sessionStorage
// and its token goes with every API call as ``Authorization: Bearer``.

import { ApiError, api, claimsOf, clearSession, h, refusalWords, saveSession, session, t } from "/ui/shared/ui.js";
import {
  beginSignIn, finishSignIn, keepFresh, oidcConfig, onEndingChange, signOutAtProvider,
} from "/ui/shared/oidc.js";

const $ = (sel) => document.querySelector(sel);

/** Who the token says is signing in: ``{clerk_id, center_id, role, exp}`` (or ``null``). */
export function identityOf(token) {
  const c = claimsOf(token);
  if (!c.sub) return null;
  return { clerk_id: c.sub, center_id: c.center || null, role: c.role || null, exp: c.exp || null };
}

function expired(s) { return s?.exp && s.exp * 1000 < Date.now(); }

function reasonOf(err) {
  // In the page's words, never the service's English; the code for whoever sets sign-in up.
  if (err instanceof ApiError) return `${refusalWords(err)}（${err.code}）`;
  return err?.code ? `${err.code}${err.message && err.message !== err.code ? `: ${err.message}` : ""}` : String(err?.message || err);
}

/**
 * Wire the sign-in form. ``roles``: the roles this page is for; ``probe(session)``: a cheap
 * API call the token must pass; ``onSignedIn(session)``: show the page; ``onSignedOut(note)``:
 * the provider would not renew the session (sign in again).
 */
export function setupSignIn({ roles, probe, onSignedIn, onSignedOut, counter = false }) {
  const form = $("#signin-form");
  const token = $("#signin-token");
  const error = $("#signin-error");
  const fail = (message) => { error.hidden = false; error.textContent = message; };
  const counterField = $("#signin-counter");

  // Checks every way in shares: the role, the center, the page's own probe.
  const admit = async (candidate) => {
    if (roles && !roles.includes(candidate.role)) return fail(t("signin_wrong_role", { role: t(`role_${candidate.role}`) }));
    if (!candidate.center_id) return fail(t("signin_no_center"));
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
    forgetEndedNotes(); // the sign-outs' "ended everywhere" are said; a pending one stays
    if (token) token.value = "";
    onSignedIn(candidate);
    return undefined;
  };

  if (token) {
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
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!token) return undefined;
    const raw = token.value.trim();
    const who = identityOf(raw);
    if (!who) return fail(t("signin_not_token"));
    if (counter && !counterField.reportValidity()) return undefined;
    const candidate = { token: raw, ...who, counter_id: counter ? counterField.value.trim() : null };
    if (expired(candidate)) return fail(t("signin_failed", { reason: "token_expired" }));
    return admit(candidate);
  });

  if (!oidcConfig()) return;
  keepFresh(() => onSignedOut?.(t("signin_expired")));
  $("#signin-oidc").addEventListener("click", async () => {
    if (counter && !counterField.reportValidity()) return;
    try {
      await beginSignIn({ counter_id: counter ? counterField.value.trim() : null });
    } catch (err) {
      fail(t("signin_failed", { reason: reasonOf(err) }));
    }
  });
  // Back from the provider with a code: exchange it, then ask the service who that is.
  finishSignIn().then(async (tokens) => {
    if (!tokens) return undefined;
    const { extra, ...kept } = tokens;
    saveSession(kept);
    let me;
    try {
      me = await api("/auth/me");
    } catch (err) {
      clearSession();
      showSignIn();
      return fail(t("signin_failed", { reason: reasonOf(err) }));
    }
    return admit({ ...kept, clerk_id: me.sub, center_id: me.center_id, role: me.role, counter_id: extra.counter_id || null });
  }).catch((err) => {
    showSignIn();
    fail(t("signin_failed", { reason: reasonOf(err) }));
  });
}

export function showSignIn(note) {
  $("#signin").hidden = false;
  $("#signin-note").hidden = !note;
  if (note) $("#signin-note").textContent = note;
  const s = session();
  if (s?.counter_id && $("#signin-counter")) $("#signin-counter").value = s.counter_id;
  ($("#signin-oidc") || $("#signin-token"))?.focus();
}

/** The stored session when it is still good (or an OIDC one that can be renewed), else ``null``. */
export function currentSession() {
  const s = session();
  if (!s?.token || !s.clerk_id) return null;
  return !expired(s) || (s.via === "oidc" && s.refresh_token) ? s : null;
}

/** What the sign-in screen says of a signed-out token the server has not ended yet (oidc.js,
 *  ``keepEnding``): that it may still be valid elsewhere and the page keeps asking, then that
 *  it is ended everywhere. Its words are codes.json's (``sign_out_unshared``, ``_shared``).
 *  One note a sign-out, headed by whose it was: with clerk A's still pending, clerk B's
 *  sign-out showed A's red note as if it were B's. A sign-out the server took at once is said
 *  only beside another's note (alone, the screen says nothing of it, as ever). */
onEndingChange(({ note: id, clerk_id: clerk, state, atOnce }) => {
  const box = $("#signout-pending");
  if (!box) return;
  let note = box.querySelector(`[data-note="${id}"]`);
  if (!note) {
    if (atOnce && !box.querySelector("[data-note]")) return;
    // data-i18n: said again in the language the next clerk picks on this screen (ui.js)
    note = h("p", { dataset: { note: id, clerk: clerk || "" } }, h("b", {}, clerk || ""), " ",
             h("span", { class: "words" }));
    box.append(note);
  }
  note.dataset.state = state;
  note.className = `notice small ${state === "pending" ? "red" : "green"}`;
  const words = note.querySelector(".words");
  words.dataset.i18n = state === "pending" ? "code_sign_out_unshared" : "code_sign_out_shared";
  words.textContent = t(words.dataset.i18n);
  box.hidden = false;
});

/** A clerk signs in: the notes of sign-outs ended everywhere go; those still pending stay. */
function forgetEndedNotes() {
  const box = $("#signout-pending");
  if (!box) return;
  box.querySelectorAll("[data-state=ended]").forEach((note) => note.remove());
  box.hidden = !box.querySelector("[data-note]");
}

/** Forget the session's tokens; an OIDC session is ended at the provider too (the browser
 *  goes there and comes back). Returns whether the browser is leaving the page. */
export function signOut() { return signOutAtProvider(); }

export { api };
