"""What the window may still offer a tablet survey's own resident: one definition, read by the
rating pad (``pads.next_survey``: what it shows) and by the scheduler (``scheduler.py``: a
tablet survey the pad no longer offers because someone else has come to the window since is
asked again where its resident is, by SMS or a clerk's call, ``Survey.redirect``).

A tablet survey is offered at its window while it waits (sent, not past its deadline), was
sent in the last ``SHOWN_MINUTES``, and nobody else has come to the window since its
resident (``nobody_else_since``): no case opened there after the resolution, no resident
received back there about another case since, and no trip there later than the resident's
last moment there plus ``TOGETHER``. Built over the read models feedback keeps (``surveys``,
``intake_cases``, ``window_trips``), as SQL: the pad and the scheduler put their own
parameters in.

A survey the window no longer offers (``no_longer_offered``) is asked where its resident is,
whichever way the pad stopped offering it: someone else came to the window (the resident has
gone), or it was shown its ``SHOWN_MINUTES`` and nobody rated it, though nobody sat down
since (an idle window: the resident left without rating). 好差评 practice: whoever did not
rate on the spot gets a text. Before, the idle window's survey waited unseen for its seven
days and expired as no answer.
"""

from __future__ import annotations

from datetime import timedelta

#: A survey sent to the tablet longer ago than this is no longer shown (the resident has left).
SHOWN_MINUTES = 10
#: A tablet survey the window stopped offering longer ago than this is not asked again
#: elsewhere: it waits out its deadline as before (no answer). The sweep meets one only when
#: it has not run for that long (feedback stopped for a day, the upgrade that brought the
#: idle window's rule): a text about a visit days ago, hundreds of them at once, is no
#: survey a resident can answer for that visit.
ASKED_AGAIN_WITHIN = timedelta(hours=24)
#: A trip at a window this soon after a resident was last there may be of someone there with
#: them: their own (the counter app records the trip of a resident it did not look up as it
#: opens their case, a moment later), or a family member's (each person looked up is a trip,
#: one after the other). A later trip is the next resident's: a case left at the window in
#: the morning and finished in the afternoon is not offered to whoever sits there then. The
#: window's moments cannot tell a family served together from the next resident within it.
TOGETHER = timedelta(minutes=30)


def nobody_else_since(s: str, center: str, counter: str, together: str) -> str:
    """SQL, true while nobody but survey ``s``'s resident (a row of ``surveys``) has come to
    the window since: no case opened there after the resolution (``send_at``, the window's
    own moment), no resident received back there about another case since, and no trip
    there later than the resident's last moment there (the case's opening or their trip
    about it) plus ``together`` (a case opened in the morning and finished in the back
    office that afternoon: the resident sitting there since before the resolution is not
    its resident). ``center`` and ``counter``: the window (the pad passes its parameters, so
    its plan reads the window's indexes directly; the scheduler ``s``'s own columns)."""
    return (
        f"NOT EXISTS (SELECT 1 FROM intake_cases c WHERE c.center_id = {center}"
        f"  AND c.counter_id = {counter} AND c.opened_at > {s}.send_at)"
        f" AND NOT EXISTS (SELECT 1 FROM intake_cases c WHERE c.center_id = {center}"
        f"  AND c.present_counter = {counter} AND c.present_at > {s}.send_at"
        f"  AND c.case_id <> {s}.case_id)"
        f" AND NOT EXISTS (SELECT 1 FROM window_trips t, intake_cases c"
        f"  WHERE t.center_id = {center} AND t.counter_id = {counter}"
        f"  AND c.case_id = {s}.case_id AND t.at > coalesce(c.present_at, c.opened_at)"
        f" + {together})")


def offered(s: str, center: str, counter: str, now: str, shown_since: str,
            together: str) -> str:
    """SQL, true while the window offers tablet survey ``s`` to its own resident: it waits
    (``now`` before its deadline), was sent after ``shown_since`` (``SHOWN_MINUTES`` ago),
    and nobody else has come to the window since (``nobody_else_since``)."""
    return (f"{s}.status = 'sent' AND {s}.expires_at > {now} AND {s}.sent_at > {shown_since}"
            f" AND {nobody_else_since(s, center, counter, together)}")


def no_longer_offered(s: str, center: str, counter: str, shown_since: str, settled: str,
                      together: str) -> str:
    """SQL, true once the window no longer offers tablet survey ``s`` (still waiting) to its
    resident, the complement of ``offered``'s window: it was sent ``SHOWN_MINUTES`` ago or
    more (``shown_since``: its time on the pad is over, whether or not anybody came since),
    or, sent before ``settled``, someone else has come to the window since
    (``nobody_else_since`` false). ``settled``: a trip applied a moment late by another
    partition's worker is seen before the window is judged on who came."""
    return (f"({s}.sent_at <= {shown_since} OR ({s}.sent_at <= {settled}"
            f" AND NOT ({nobody_else_since(s, center, counter, together)})))")
