// The clerk's steps, kept in the browser until intake has them: strictly in order, each with its
// own Idempotency-Key made once when the step is queued, so a retry after a dropped connection
// (even one whose answer was lost after the server recorded the step) records it exactly once.
//
// A step intake refuses (a rule, an invalid value) is never dropped: it waits, with its answer,
// for the clerk to correct and resend it or to discard it; meanwhile the later steps of the same
// case are held where they are (other cases go on), so a 办结 queued behind a refused deadline
// is not recorded before the deadline is.
//
// The queue lives in localStorage: a reload or a crash of the tab keeps it. A case opened while
// the network is down has no id yet; its later steps name it by a local reference that is
// resolved when the opening is answered.
//
// A counter tablet is shared: each step is kept with the clerk who took it (``by``) and is
// that clerk's alone. Another clerk signed in on the same tablet neither sees it (``items``
// and ``failed`` are the signed-in clerk's) nor sends it (it would be recorded as theirs: the
// actor is whoever's token it goes with), nor waits behind it: it stays until its own clerk
// signs in again, and a sign-out drops only the signing-out clerk's steps. A refused step
// keeps its text for its clerk to correct until the end of the center's day it was refused
// on, and a queued one waits for its clerk until the end of the center's day it was taken on
// (``prune``): then it goes, and the page says so (docs/pages.md). The center's day is judged
// on the services' clock, as every center's day of the page (ui.js, ``beforeCenterToday``).

import {
  ApiError, NetworkError, api, beforeCenterToday, newKey, onServicesClock, readServicesClock,
  serviceOffset, servicesClockLost, session, untilCenterDayEnd,
} from "/ui/shared/ui.js";

const QUEUE_KEY = "sixstep.counter.queue.v1";
const CASES_KEY = "sixstep.counter.cases.v1";
const FAILED_KEY = "sixstep.counter.failed.v1";
const LOCK = "sixstep.counter.queue";
// Answers that mean "not now" rather than "never": the step stays first in the queue.
const RETRY_CODES = new Set(["version_conflict", "store_unavailable", "read_model_behind"]);
const MAX_DELAY_MS = 5000;
// This page's monotonic clock (performance.now()) counts from the page's own start: a step
// queued by another page (before a reload) has no tick this page can read; the service's
// clock (its answers' Date header) is read instead.
const PAGE = newKey("page");
// How far this device's clock may have been set back while a step waited before the queue
// says so: the 5 s the service takes as said.
const SET_BACK_MS = 5000;

/** This device's clock, for a step sent now, as its ``occurred_at`` read it: when the clock was
 *  set back while the step waited (NTP correcting a fast tablet, a clerk fixing it by hand),
 *  the clock as it was set when the step was queued, moved on by the page's monotonic clock,
 *  so the service's correction (``sent_at`` less its own clock) is the error that dated the
 *  step, not the clock's error after the change. A clock set forward is not told apart on the
 *  monotonic clock alone (one that stops while the device sleeps, as some do, looks the same,
 *  and trusting it would take an hour asleep for a clock an hour slow): the service's clock,
 *  read again after it (``needsOffset``), tells them apart, as for a step queued by another
 *  page (before a reload; ``reloadedClock``). Sent as it was, a step queued before the clock
 *  jumped 2 h forward said the jumped clock, and was refused for it (``sent_at``) although it
 *  was dated right; resent after the clerk set the clock right, it was dated at the resend.
 *  Anything else: the clock as it is. */
export function sendingClock(item, now = Date.now(), tick = performance.now(),
                             offset = serviceOffset()) {
  const queued = Date.parse(item.queuedAt);
  if (item.tick?.page !== PAGE) return reloadedClock(item, now, offset);
  if (Number.isNaN(queued)) return new Date(now);
  const waited = tick - item.tick.at;
  if (now - queued < waited - SET_BACK_MS) return new Date(queued + waited);
  // Set forward, or the tablet asleep: the service's clock tells them apart, as after a reload.
  return now - queued > waited + SET_BACK_MS ? reloadedClock(item, now, offset) : new Date(now);
}

/** This device's clock now, with the page's monotonic clock beside it, for a post sent later
 *  (``sendingClock`` reads it back): a step as it is queued, a resident as they sit down. */
export function clockNow() {
  return { queuedAt: new Date().toISOString(), tick: { page: PAGE, at: performance.now() },
           offset: serviceOffset() };
}

/** When a refused step happened, to resend it with: its first ``occurred_at``, moved by as much
 *  as this device's clock was set back since (``sendingClock``: the step is sent with the clock
 *  as it is now, so its moment is read on that clock). The clerk corrects what the step says,
 *  not when it happened: dated at the resend, a referral refused at 10:00 and corrected at
 *  10:04 was 10:04's (and, after midnight, the next day's). Not for a step refused for this
 *  device's clock (``sent_at``): its first moment was read off a clock more than 300 s off,
 *  by how much this page cannot tell (a slow clock set forward is not seen), so it is dated
 *  at the resend, on the clock the clerk has set right. */
export function firstMoment(refused, now = Date.now(), tick = performance.now(),
                            offset = serviceOffset()) {
  const first = Date.parse(refused.body?.occurred_at);
  if (Number.isNaN(first) || refused.error?.details?.field === "sent_at") return null;
  return new Date(first + now - sendingClock(refused, now, tick, offset).getTime()).toISOString();
}

/** The same for a step queued before this page was loaded (a reload, a crash of the tab): by
 *  the service's clock, as the page read it off the answers when the step was queued
 *  (``item.offset``) and as it reads it now. Changed by more than the 5 s taken as said, this
 *  device's clock was set back or forward by as much since, and is sent as it was set when
 *  the step was queued; either way, since the service's clock does not sleep. Without both
 *  readings (the step queued before any answer, none yet here): the clock as it is. */
function reloadedClock(item, now, offset) {
  if (typeof item.offset !== "number" || typeof offset !== "number") return new Date(now);
  const moved = offset - item.offset; // > 0: set back since; < 0: set forward
  return Math.abs(moved) > SET_BACK_MS ? new Date(now + moved) : new Date(now);
}

/** Whether ``item`` needs the service's clock read before it is sent (``reloadedClock``): it
 *  was queued by another page, or this device's clock was set forward (or it slept) since it
 *  was queued here; the page has not read the service's clock since (``serviceOffset``). */
function needsOffset(item, now = Date.now(), tick = performance.now()) {
  if (typeof item.offset !== "number" || serviceOffset() !== null) return false;
  if (item.tick?.page !== PAGE) return true;
  return now - Date.parse(item.queuedAt) > tick - item.tick.at + SET_BACK_MS;
}

function read(key, fallback) {
  try { return JSON.parse(localStorage.getItem(key)) ?? fallback; } catch { return fallback; }
}

function write(key, value) { localStorage.setItem(key, JSON.stringify(value)); }

/** The clerk signed in on this tab (null: nobody). */
function clerk() { return session()?.clerk_id || null; }

/** Whether ``item`` is the signed-in clerk's (a step kept before steps named their clerk is
 *  anyone's, as it was). */
function ours(item) { return !item.by || item.by === clerk(); }

/** Whether ``item`` was queued (``queuedAt``, with the services' clock as read then,
 *  ``offset``) on a center's day before today's, on the services' clock (ui.js). */
const queuedBeforeToday = (item, now) => beforeCenterToday(item.queuedAt, item.offset, now);

/** Whether the refused step ``f`` was refused (``failedAt``, with ``failedOffset``) on a
 *  center's day before today's. */
const refusedBeforeToday = (f, now) => beforeCenterToday(f.failedAt, f.failedOffset, now);

/** A refused step's moment of refusal: this device's clock, and the services' as read then. */
const refusedNow = () => ({ failedAt: new Date().toISOString(), failedOffset: serviceOffset() });

export class StepQueue extends EventTarget {
  constructor() {
    super();
    this.state = "online"; // online | sending | offline | retrying | auth
    this.dayTimer = null;
    this.sendingId = null;
    this.running = false;
    this.again = false;
    this.timer = null;
    this.delay = 1000;
    window.addEventListener("online", () => this.kick(0));
    window.addEventListener("offline", () => { if (this.items().length) this.setState("offline"); });
  }

  /** The signed-in clerk's steps not yet recorded by intake, oldest first. */
  items() { return read(QUEUE_KEY, []).filter(ours); }

  /** The signed-in clerk's steps intake refused (a rule, an invalid value): shown to the
   *  clerk, never retried as they were; ``resend`` or ``discard`` answers each. */
  failed() { return read(FAILED_KEY, []).filter(ours); }

  /** Drop every clerk's refused steps refused before the center's today: what a resident said
   *  is not kept on the tablet past the day for a correction nobody made. The same for steps
   *  still queued from before today, whoever's (a clerk who went home with steps queued, the
   *  network down till the day's end): each such case's steps go, what was typed with them
   *  (the later ones of a case would be recorded out of order without the earlier ones), and
   *  only that they were never sent stays (``queue_expired``, without a word of them) for their
   *  clerk to see at her next sign-in, until today's end. Kept with no limit, a step waited on a
   *  shared tablet for days, holding what a resident said, for a clerk who might never come. */
  prune(now = Date.now()) {
    const queued = read(QUEUE_KEY, []);
    // The case of a step on its way stays: intake may have recorded it already (sent at
    // 23:59:59, answered at 00:00:01). Dropped by the midnight's prune, it was said never
    // sent although it was recorded, and its answer came for nothing; the next prune (the
    // drain's, the next timer's) takes the case if it is still unsent then.
    const onItsWay = queued.find((i) => i.id === this.sendingId)?.caseRef;
    const stale = new Set(queued.filter((i) => i.caseRef !== onItsWay && queuedBeforeToday(i, now))
      .map((i) => i.caseRef));
    const failed = read(FAILED_KEY, []);
    const kept = failed.filter((f) => !refusedBeforeToday(f, now) && !stale.has(f.caseRef));
    if (!stale.size && kept.length === failed.length) return;
    const markers = new Map(); // per case and clerk: the first step that was never sent
    for (const i of queued.filter((q) => stale.has(q.caseRef))) {
      const at = `${i.caseRef}\u0000${i.by}`;
      if (markers.has(at)) { markers.get(at).error.details.steps += 1; continue; }
      markers.set(at, { id: i.id, op: i.op, caseRef: i.caseRef, by: i.by,
                        body: { occurred_at: i.body?.occurred_at },
                        error: { code: "queue_expired", details: { steps: 1 } },
                        failedAt: new Date(now).toISOString(), failedOffset: serviceOffset() });
    }
    const left = [...kept, ...markers.values()];
    write(FAILED_KEY, left);
    const blocked = new Set(left.map((f) => f.caseRef));
    write(QUEUE_KEY, queued.filter((i) => !stale.has(i.caseRef))
      .map((i) => (i.held && !blocked.has(i.caseRef) ? { ...i, held: false } : i)));
    this.emit("change");
  }

  /** ``prune`` on the services' clock: this device's clock seen set forward since the
   *  services' was read (or the tablet asleep: not told apart), it is read again first. Judged
   *  on the jumped clock, a tablet set 2 hours forward at 22:45 dropped the day's unsent steps
   *  as yesterday's, the network back a moment later. Offline, this device's clock is all
   *  there is: the day's end is not put off for a page that cannot ask. */
  async pruneOnServicesClock() {
    if (servicesClockLost()) await readServicesClock();
    this.prune();
  }

  /** ``prune`` at each of the center's day ends while this page is open, signed in or not: a
   *  page left on the sign-in screen overnight held the day's queued and refused steps (what
   *  residents said) until its next load or sign-in. The day ends on the services' clock
   *  (ui.js, ``untilCenterDayEnd``): timed at the page's load on this device's clock (no answer
   *  yet), it is pruned and timed again as soon as an answer tells the services' clock (a
   *  tablet 10 minutes slow, loaded at 23:55 by the services, was on the next day at once). */
  pruneAtDayEnds() {
    if (this.dayTimer === null) onServicesClock(() => { this.prune(); this.pruneAtDayEnds(); });
    clearTimeout(this.dayTimer);
    this.dayTimer = setTimeout(async () => {
      await this.pruneOnServicesClock();
      this.pruneAtDayEnds();
    }, untilCenterDayEnd());
  }

  /** How many of the signed-in clerk's steps were never sent and left the tablet at the end
   *  of the day they were taken on (``prune``). */
  expired() {
    return this.failed().filter((f) => f.error?.code === "queue_expired")
      .reduce((n, f) => n + (f.error.details?.steps || 1), 0);
  }

  /** Whether the case known here as ``caseRef`` has a refused step waiting for the clerk: its
   *  later steps are held until it is answered. */
  blocked(caseRef) { return this.failed().some((f) => f.caseRef === caseRef); }

  /** The refused step ``failedId`` corrected: ``body`` goes where the refused one was, before
   *  the steps held behind it (a new key: intake recorded nothing under the refused one),
   *  dated when it first happened (``firstMoment``). */
  resend(failedId, body) {
    const refused = this.failed().find((f) => f.id === failedId);
    if (!refused) return null;
    const first = body && "occurred_at" in body ? firstMoment(refused) : null;
    const item = this.enqueue(refused.op, refused.caseRef,
                              first ? { ...body, occurred_at: first } : body, { quiet: true });
    this.answered(failedId);
    return item;
  }

  /** The clerk gives up the refused step ``failedId``: the steps held behind it go on. */
  discard(failedId) { this.answered(failedId); }

  /** The refused step ``failedId`` is answered: when it was the case's last, its held steps go. */
  answered(failedId) {
    const gone = this.failed().find((f) => f.id === failedId);
    write(FAILED_KEY, read(FAILED_KEY, []).filter((f) => f.id !== failedId));
    if (gone && !this.blocked(gone.caseRef)) {
      write(QUEUE_KEY, read(QUEUE_KEY, []).map((i) => (i.caseRef === gone.caseRef ? { ...i, held: false } : i)));
    }
    this.emit("change");
    this.kick(0);
  }

  /** The case id intake gave the case known here as ``ref`` (undefined until it answered). */
  caseId(ref) { return read(CASES_KEY, {})[ref]; }

  /** Take up a case intake already has (``id``) under the local reference ``ref``. */
  adopt(ref, id) { write(CASES_KEY, { ...read(CASES_KEY, {}), [ref]: id }); }

  /** Queue one step: ``op`` is ``open`` or a step path (``hear``, ``restate`` …). */
  enqueue(op, caseRef, body, { quiet = false } = {}) {
    const item = {
      id: newKey("q"), key: newKey("step"), op, caseRef, body,
      ...clockNow(), // the clock and the page's monotonic one (sendingClock)
      by: session()?.clerk_id || null, // sent only under the token of who took the step
    };
    const items = read(QUEUE_KEY, []);
    // While a step of the case is refused, what the clerk adds goes before the held steps.
    const at = items.findIndex((i) => i.caseRef === caseRef && i.held);
    if (at >= 0) items.splice(at, 0, item);
    else items.push(item);
    write(QUEUE_KEY, items);
    if (!quiet) { this.emit("change"); this.kick(0); }
    return item;
  }

  kick(delayMs) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.flush(), delayMs);
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.emit("state");
  }

  emit(type, detail = {}) { this.dispatchEvent(new CustomEvent(type, { detail })); }

  /** Send what is queued, in order; one tab at a time (Web Locks where the browser has them). */
  async flush() {
    if (this.running) { this.again = true; return; }
    this.running = true;
    try {
      if (navigator.locks) {
        await navigator.locks.request(LOCK, { ifAvailable: true }, async (lock) => {
          if (lock) await this.drain();
          else this.kick(2000); // another tab of this counter is sending
        });
      } else {
        await this.drain();
      }
    } finally {
      this.running = false;
      if (this.again) { this.again = false; this.kick(0); }
    }
  }

  async drain() {
    await this.pruneOnServicesClock();
    for (;;) {
      // The signed-in clerk's steps only: another clerk's wait for them (``ours``).
      const item = this.items().find((i) => !i.held && !this.blocked(i.caseRef));
      if (!item) { this.setState("online"); this.delay = 1000; return; }
      if (!session()?.token) {
        this.setState("auth"); // waits for its clerk to sign in again
        this.emit("change");
        return;
      }
      let path = "/cases";
      if (item.op !== "open") {
        const id = this.caseId(item.caseRef);
        if (!id) { // its opening was refused: nothing to attach it to
          this.refuse(item, { code: "case_not_opened", message: "the case was not opened" });
          continue;
        }
        path = `/cases/${id}/${item.op}`;
      }
      this.sendingId = item.id;
      this.setState("sending");
      this.emit("change");
      try {
        // Reloaded before any answer: the service's clock is read first (any answer has it;
        // one that is not 2xx, a proxy's, has it too: only the network's failure stops here).
        if (needsOffset(item)) {
          await api("/health").catch((err) => { if (err instanceof NetworkError) throw err; });
        }
        const answer = await api(path, { method: "POST", body: item.body, key: item.key,
                                         sentAt: () => sendingClock(item) });
        if (item.op === "open") write(CASES_KEY, { ...read(CASES_KEY, {}), [item.caseRef]: answer.id });
        this.remove(item.id);
        this.sendingId = null;
        this.delay = 1000;
        this.emit("sent", { item, answer });
        this.emit("change");
      } catch (err) {
        this.sendingId = null;
        if (err instanceof NetworkError
            || (err instanceof ApiError && (err.status >= 500 || err.status === 408 || err.status === 429
                                            || RETRY_CODES.has(err.code)))) {
          this.setState(err instanceof NetworkError ? "offline" : "retrying");
          this.emit("change");
          this.kick(this.delay);
          this.delay = Math.min(this.delay * 2, MAX_DELAY_MS);
          return;
        }
        if (err instanceof ApiError && err.status === 401) {
          this.setState("auth"); // kept: sent once the clerk signs in again
          this.emit("change");
          this.emit("auth");
          return;
        }
        this.refuse(item, { code: err.code || "error", message: err.message, status: err.status,
                           details: err.details || {} });
      }
    }
  }

  remove(id) { write(QUEUE_KEY, read(QUEUE_KEY, []).filter((i) => i.id !== id)); }

  /** Sign-out: drop the signing-out clerk's queued and refused steps (nothing is sent), and
   *  the case ids no step left here names. Another clerk's steps stay: they wait for them. */
  forget() {
    clearTimeout(this.timer);
    const items = read(QUEUE_KEY, []).filter((i) => !ours(i));
    const failed = read(FAILED_KEY, []).filter((f) => !ours(f));
    const refs = new Set([...items, ...failed].map((i) => i.caseRef));
    const cases = Object.fromEntries(Object.entries(read(CASES_KEY, {})).filter(([ref]) => refs.has(ref)));
    [[QUEUE_KEY, items], [FAILED_KEY, failed], [CASES_KEY, cases]].forEach(([key, value]) => {
      if (Array.isArray(value) ? value.length : Object.keys(value).length) write(key, value);
      else localStorage.removeItem(key);
    });
    this.setState("online");
    this.emit("change");
  }

  /** The case's resident was erased while its opening waited here (410 ``resident_erased``):
   *  nothing of it can ever be recorded, and nothing a clerk could correct would change that,
   *  so its steps go from the tablet at once, what was typed with them; only that it was
   *  refused stays, without a word of it, for the clerk to see and dismiss (or the day's end). */
  erased(item, error) {
    write(QUEUE_KEY, read(QUEUE_KEY, []).filter((i) => i.caseRef !== item.caseRef));
    const marker = { id: item.id, op: item.op, caseRef: item.caseRef, by: item.by,
                     body: { occurred_at: item.body?.occurred_at }, error, ...refusedNow() };
    write(FAILED_KEY, [...read(FAILED_KEY, []).filter((f) => f.caseRef !== item.caseRef), marker]);
    this.emit("failed", { item: marker, error });
    this.emit("change");
  }

  refuse(item, error) {
    this.remove(item.id);
    if (error.code === "resident_erased") { this.erased(item, error); return; }
    write(FAILED_KEY, [...read(FAILED_KEY, []), { ...item, error, ...refusedNow() }]);
    // The case's later steps wait for the clerk's answer, in their order.
    write(QUEUE_KEY, read(QUEUE_KEY, []).map((i) => (i.caseRef === item.caseRef ? { ...i, held: true } : i)));
    this.emit("failed", { item, error });
    this.emit("change");
  }
}
