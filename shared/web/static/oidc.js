// Staff sign-in at the center's identity provider: OpenID Connect, authorization code flow with
// PKCE (S256), state and nonce, as a public client (no secret lives in a browser).
//
// The page embeds the issuer, client id and scope (``#oidc-config``, from OIDC_ISSUER,
// OIDC_CLIENT_ID, OIDC_SCOPE); the provider's endpoints come from its discovery document. The
// tokens stay in this tab's sessionStorage (the session of ui.js); the access token goes with
// every API call. It is renewed with the refresh token before it expires (and once more when
// the API answers token_expired), so a clerk's queued steps never wait for a new sign-in.

import {
  NetworkError, claimsOf, clearSession, saveSession, servicesNow, session, setRenewer,
} from "/ui/shared/ui.js";

const PENDING_KEY = "sixstep.oidc.pending";
const CONFIG = JSON.parse(document.getElementById("oidc-config")?.textContent || "null");
const CALLBACK_PARAMS = ["code", "state", "session_state", "iss", "error", "error_description", "error_uri"];
const RETRY_MS = 5000;

/** A sign-in step that failed; ``code`` says which (state_mismatch, invalid_grant ...). */
export class OidcError extends Error {
  constructor(code, message = "") {
    super(message || code);
    this.code = code;
  }
}

/** The provider the page signs in at, or ``null`` when it has none. */
export function oidcConfig() { return CONFIG; }

const b64url = (bytes) => btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

function randomString(bytes = 32) {
  const out = new Uint8Array(bytes);
  crypto.getRandomValues(out);
  return b64url(out);
}

async function challengeOf(verifier) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return b64url(new Uint8Array(digest));
}

function redirectUri() { return `${location.origin}${location.pathname}`; }

let metadata = null;

/** The provider's discovery document; its ``issuer`` must be the configured one exactly. */
export async function discover() {
  if (metadata) return metadata;
  let answer;
  try {
    answer = await fetch(`${CONFIG.issuer.replace(/\/$/, "")}/.well-known/openid-configuration`, { cache: "no-store" });
  } catch (err) {
    throw new NetworkError(String(err?.message || err));
  }
  if (!answer.ok) throw new OidcError("discovery_failed", `HTTP ${answer.status}`);
  const found = await answer.json();
  if (found.issuer !== CONFIG.issuer) throw new OidcError("issuer_mismatch", String(found.issuer));
  metadata = found;
  return found;
}

/** Go to the provider's sign-in page. ``extra`` comes back with the tokens (the counter). */
export async function beginSignIn(extra = {}) {
  const provider = await discover();
  const verifier = randomString(48);
  const state = randomString(16);
  const nonce = randomString(16);
  sessionStorage.setItem(PENDING_KEY, JSON.stringify({ verifier, state, nonce, extra, search: location.search }));
  const query = new URLSearchParams({
    response_type: "code", client_id: CONFIG.client_id, redirect_uri: redirectUri(),
    scope: CONFIG.scope, state, nonce,
    code_challenge: await challengeOf(verifier), code_challenge_method: "S256",
  });
  location.assign(`${provider.authorization_endpoint}?${query}`);
}

async function tokenRequest(form) {
  const provider = await discover();
  let answer;
  try {
    answer = await fetch(provider.token_endpoint, {
      method: "POST", cache: "no-store", credentials: "omit",
      headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
      body: new URLSearchParams({ client_id: CONFIG.client_id, ...form }),
    });
  } catch (err) {
    throw new NetworkError(String(err?.message || err));
  }
  const body = await answer.json().catch(() => ({}));
  if (!answer.ok) throw new OidcError(body.error || `http_${answer.status}`, body.error_description || "");
  if (!body.access_token) throw new OidcError("no_access_token");
  return body;
}

function tokensOf(body, previous = {}) {
  const lifetime = Number(body.expires_in) > 0 ? Number(body.expires_in) : 300;
  // Timed by this browser's clock from when the answer came (the counter's clock may be off).
  const expiresAt = Date.now() + lifetime * 1000;
  return {
    token: body.access_token, refresh_token: body.refresh_token || previous.refresh_token || null,
    id_token: body.id_token || previous.id_token || null, expires_at: expiresAt,
    lifetime_ms: lifetime * 1000, exp: Math.floor(expiresAt / 1000), via: "oidc",
  };
}

/**
 * Back from the provider: ``null`` when this page load is no sign-in callback, else the new
 * tokens and the ``extra`` given to ``beginSignIn``. The URL loses the code and state at once.
 */
export async function finishSignIn() {
  if (!CONFIG) return null;
  const params = new URLSearchParams(location.search);
  if (!params.has("code") && !params.has("error")) return null;
  let pending = null;
  try { pending = JSON.parse(sessionStorage.getItem(PENDING_KEY)); } catch { pending = null; }
  sessionStorage.removeItem(PENDING_KEY);
  const kept = new URLSearchParams(pending?.search || "");
  CALLBACK_PARAMS.forEach((name) => kept.delete(name));
  history.replaceState(null, "", `${location.pathname}${kept.size ? `?${kept}` : ""}`);
  if (params.has("error")) throw new OidcError(params.get("error"), params.get("error_description") || "");
  if (!pending || params.get("state") !== pending.state) throw new OidcError("state_mismatch");
  const body = await tokenRequest({
    grant_type: "authorization_code", code: params.get("code"), redirect_uri: redirectUri(),
    code_verifier: pending.verifier,
  });
  const id = claimsOf(body.id_token || "");
  const audiences = [].concat(id.aud || []);
  if (id.iss !== CONFIG.issuer || !audiences.includes(CONFIG.client_id) || id.nonce !== pending.nonce) {
    throw new OidcError("id_token_invalid");
  }
  return { ...tokensOf(body), name: id.preferred_username || id.name || null, extra: pending.extra || {} };
}

// -- keeping the access token fresh ---------------------------------------------------------------

let renewing = null;
let timer = null;
let onEnded = () => {};

/** New tokens with the refresh token (one request however many callers ask at once). */
export function renew() {
  if (!renewing) renewing = renewOnce().finally(() => { renewing = null; });
  return renewing;
}

async function renewOnce() {
  const current = session();
  if (current?.via !== "oidc" || !current.refresh_token) throw new OidcError("no_refresh_token");
  const body = await tokenRequest({ grant_type: "refresh_token", refresh_token: current.refresh_token });
  const now = session();
  if (!now || now.clerk_id !== current.clerk_id) throw new OidcError("signed_out"); // signed out meanwhile
  const next = { ...now, ...tokensOf(body, now) };
  saveSession(next);
  schedule();
  return next;
}

function schedule(delayMs) {
  clearTimeout(timer);
  const s = session();
  if (s?.via !== "oidc") return;
  // Renew when a quarter of the token's life (at most a minute) is left.
  const margin = Math.min(60_000, (s.lifetime_ms || 300_000) / 4);
  const wait = delayMs ?? Math.max(0, s.expires_at - margin - Date.now());
  timer = setTimeout(async () => {
    try {
      await renew();
    } catch (err) {
      if (err instanceof NetworkError) { schedule(RETRY_MS); return; } // offline: try again
      clearTimeout(timer);
      if (session()?.via === "oidc") onEnded(err); // the provider said no: sign in again
    }
  }, wait);
}

/**
 * Keep an OIDC session's access token fresh while the page is open; ``ended(err)`` when the
 * provider refuses to renew it (the clerk must sign in again). Also renews on the API's
 * ``token_expired`` (ui.js calls ``renew``) and when the network comes back.
 */
export function keepFresh(ended) {
  onEnded = ended || (() => {});
  setRenewer(async () => { await renew(); });
  window.addEventListener("online", () => {
    const s = session();
    if (s?.via === "oidc" && s.expires_at - Date.now() < (s.lifetime_ms || 0) / 4) schedule(0);
  });
  schedule();
}

/** Revoke the token on the server (``POST /auth/sign-out``: every service refuses it from
 *  then on, also to whoever copies this browser's profile). Waits at most 4 s. Returns
 *  ``true`` when the server took it (204; or 401: dead already), else how long to wait before
 *  asking again (the 503's ``Retry-After``, or 5 s when no answer came). */
async function endTokenOnServer(token) {
  if (!token) return true;
  const stop = new AbortController();
  const giveUp = setTimeout(() => stop.abort(), 4000);
  try {
    const r = await fetch("/auth/sign-out", { method: "POST", signal: stop.signal, cache: "no-store",
                                              headers: { Authorization: `Bearer ${token}` } });
    if (r.status === 204 || r.status === 401) return true;
    const after = Number(r.headers.get("Retry-After"));
    return after > 0 ? after * 1000 : RETRY_MS;
  } catch {
    return RETRY_MS;
  } finally {
    clearTimeout(giveUp);
  }
}

// -- a sign-out the bus did not take ---------------------------------------------------------------
//
// A sign-out answered 503 (NATS away) or not answered left the token refused by the replica
// asked at most: every other service and replica takes it until its ``exp`` (hours, for the
// API's own tokens), from anyone holding a copy of it. The page still forgets it at once (a
// shared tablet must not keep it in its storage), but keeps it in this page's memory only and
// asks again in the background (the 503's Retry-After, then doubling to 30 s; at once when the
// network comes back) until the server takes it or it expires by itself, and says so on the
// sign-in screen meanwhile (``onEndingChange``): the clerk knows it may still be valid
// elsewhere, and not to close the page. Closed anyway, the token stays valid until its ``exp``.

const RETRY_MAX_MS = 30_000;
// {note, clerk, token, until, timer, delay}: in this page's memory, never stored
const ending = new Set();
let notes = 0; // each sign-out's number: what tells its note from another clerk's
let endingChanged = () => {};

/** ``fn({note, clerk_id, state, atOnce})`` is told of each sign-out's token as the server
 *  takes it: ``pending`` while it waits for the server to end it (the 503, no answer),
 *  ``ended`` once it is (``atOnce``: the sign-out's own answer ended it). ``note`` is the
 *  sign-out's number on this page (never the token), ``clerk_id`` whose it was: a clerk
 *  signing out beside another's sign-out still pending is told of her own, not shown the
 *  other's red note as if it were hers. */
export function onEndingChange(fn) { endingChanged = fn; }

function attempt(entry) {
  clearTimeout(entry.timer);
  entry.timer = setTimeout(async () => {
    // Expired by itself (``exp`` plus the 30 s leeway the services give it): dead everywhere.
    // On the services' clock as the page read it off their answers (``servicesNow``): on a
    // tablet's fast clock it was said ended, never asked, while every service still took it.
    const now = servicesNow().getTime();
    const answer = now > entry.until ? true : await endTokenOnServer(entry.token);
    if (!ending.has(entry)) return;
    if (answer === true) {
      ending.delete(entry);
      endingChanged({ note: entry.note, clerk_id: entry.clerk, state: "ended", atOnce: false });
      return;
    }
    entry.delay = Math.min(Math.max(answer, entry.delay * 2), RETRY_MAX_MS);
    attempt(entry);
  }, entry.delay);
}

function keepEnding(token, exp, firstWait, tabletClock, clerk) {
  // ``until`` on the services' clock (``attempt``): an OIDC session's ``exp`` was read on this
  // tablet's (``tokensOf``), the page's own tokens' is the services'; none known: a day on.
  const expires = !exp ? servicesNow().getTime() + 24 * 3600 * 1000
    : tabletClock ? servicesNow(exp * 1000).getTime() : exp * 1000;
  const until = expires + 30_000;
  const entry = { note: ++notes, clerk, token, until, timer: null, delay: Math.min(firstWait, RETRY_MAX_MS) };
  ending.add(entry);
  attempt(entry);
  endingChanged({ note: entry.note, clerk_id: clerk, state: "pending", atOnce: false });
}

window.addEventListener("online", () => {
  ending.forEach((entry) => { entry.delay = 0; attempt(entry); });
});
window.addEventListener("beforeunload", (event) => {
  if (ending.size) event.preventDefault(); // the browser asks: closed, the token stays valid
});

/** Forget the tokens; with a provider session, end it there too (the browser goes there and
 *  comes back to this page). Returns whether the browser is leaving. A token the server did
 *  not take is asked again in the background (``keepEnding``), unless the browser leaves for
 *  the provider: its session there must end (the next clerk's sign-in would be this one's),
 *  and its access token lives minutes. */
export async function signOutAtProvider() {
  const s = session();
  const answer = await endTokenOnServer(s?.token);
  clearSession();
  clearTimeout(timer);
  let provider = null;
  if (CONFIG && s?.via === "oidc") {
    try { provider = await discover(); } catch { provider = null; }
  }
  if (!provider?.end_session_endpoint) {
    if (answer !== true) keepEnding(s.token, s.exp, answer, s.via === "oidc", s.clerk_id);
    else if (s?.token) endingChanged({ note: ++notes, clerk_id: s.clerk_id, state: "ended", atOnce: true });
    return false;
  }
  const query = new URLSearchParams({ client_id: CONFIG.client_id, post_logout_redirect_uri: redirectUri() });
  if (s.id_token) query.set("id_token_hint", s.id_token);
  location.assign(`${provider.end_session_endpoint}?${query}`);
  return true;
}
