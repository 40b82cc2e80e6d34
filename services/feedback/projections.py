"""Feedback's working read models (asyncpg): surveys and rectifications.

``surveys`` drives the scheduler (what to send, what to expire) and answers "what did this
case's resident say"; ``rectifications`` is the supervisor's board. The center's figures are
in ``figures.py``. Both are built from feedback's own events on the stream.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from operator import itemgetter
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from shared.contracts import Envelope
from shared.readmodels import bulk
from shared.readmodels.readmodel import ReadModel

CONSUMER = "feedback-views"

#: A ``surveys`` row as the live INSERT sends it: one element of its one array parameter
#: (``bulk.RowType``; a jsonb column's field text, cast in the SELECT). As one array a
#: column, asyncpg asked each of a row's 29 values whether it is itself an array (an
#: ``isinstance`` against ``collections.abc`` each, two for a text).
SURVEY_ROW = bulk.RowType("survey_row", (
    ("survey_id", "uuid"), ("case_id", "uuid"), ("center_id", "text"), ("counter_id", "text"),
    ("clerk_id", "text"), ("service_item", "text"), ("purpose", "text"), ("channel", "text"),
    ("resident_id", "uuid"), ("rectification_id", "uuid"), ("requested_at", "timestamptz"),
    ("send_at", "timestamptz"), ("expires_at", "timestamptz"), ("version", "integer"),
    ("position", "bigint"), ("status", "text"), ("sent_at", "timestamptz"),
    ("answered_at", "timestamptz"), ("level", "text"), ("comment", "text"),
    ("aspects", "text"), ("via", "text"), ("answered_by", "text"), ("recorded_by", "text"),
    ("closed_at", "timestamptz"), ("withdrawn_reason", "text"), ("verdict", "text"),
    ("staff_channel", "text"), ("reason_tags", "text")))
#: A ``rectifications`` row likewise.
RECTIFICATION_ROW = bulk.RowType("rectification_row", (
    ("rectification_id", "uuid"), ("case_id", "uuid"), ("center_id", "text"),
    ("survey_id", "uuid"), ("resident_id", "uuid"), ("rating", "text"), ("summary", "text"),
    ("opened_at", "timestamptz"), ("deadline_on", "date"), ("version", "integer"),
    ("position", "bigint"), ("basis", "text"), ("reason_tags", "text"), ("status", "text"),
    ("completed_at", "timestamptz"), ("completed_on", "date"), ("outcome", "text"),
    ("actions", "text"), ("on_time", "boolean"), ("revisit_survey_id", "uuid"),
    ("track", "text"), ("triaged_at", "timestamptz"), ("appeal", "text"),
    ("appealed_by", "text"), ("appeal_reasons", "text"), ("appeal_grounds", "text"),
    ("appeal_decided_by", "text"), ("appeal_decision_reasons", "text"),
    ("revisit_attempt", "integer"), ("deadline_kept", "boolean")))
#: A survey's changes in a batch, one element of its UPDATE's one array parameter, with the
#: mask saying which of these it has (``bulk.patch_type``): every column ``_plan`` patches.
SURVEY_CHANGE = bulk.patch_type("survey_change", ("survey_id", "uuid"), (
    ("status", "text"), ("sent_at", "timestamptz"), ("channel", "text"),
    ("send_at", "timestamptz"), ("expires_at", "timestamptz"),
    ("answered_at", "timestamptz"), ("level", "text"), ("comment", "text"),
    ("aspects", "jsonb"), ("via", "text"), ("answered_by", "text"), ("recorded_by", "text"),
    ("verdict", "text"), ("staff_channel", "text"), ("reason_tags", "jsonb"),
    ("closed_at", "timestamptz"), ("withdrawn_reason", "text"), ("version", "integer"),
    ("position", "bigint")))
#: A rectification's changes likewise.
RECTIFICATION_CHANGE = bulk.patch_type("rectification_change", ("rectification_id", "uuid"), (
    ("status", "text"), ("completed_at", "timestamptz"), ("completed_on", "date"),
    ("outcome", "text"), ("actions", "text"), ("on_time", "boolean"),
    ("revisit_survey_id", "uuid"), ("revisit_attempt", "integer"), ("track", "text"),
    ("triaged_at", "timestamptz"), ("basis", "text"), ("deadline_on", "date"),
    ("appeal", "text"), ("appealed_by", "text"), ("appeal_reasons", "text"),
    ("appeal_grounds", "text"), ("appeal_decided_by", "text"),
    ("appeal_decision_reasons", "text"), ("deadline_kept", "boolean"), ("version", "integer"),
    ("position", "bigint")))

DDL = [
    "CREATE TABLE IF NOT EXISTS surveys ("
    " survey_id uuid PRIMARY KEY, case_id uuid NOT NULL, center_id text NOT NULL,"
    " counter_id text NOT NULL, clerk_id text NOT NULL, service_item text NOT NULL,"
    " purpose text NOT NULL, channel text NOT NULL, resident_id uuid, rectification_id uuid,"
    " status text NOT NULL, requested_at timestamptz NOT NULL, send_at timestamptz NOT NULL,"
    " expires_at timestamptz NOT NULL, sent_at timestamptz, answered_at timestamptz,"
    " level text, comment text, aspects jsonb, via text, answered_by text,"
    " closed_at timestamptz, withdrawn_reason text,"
    " version int NOT NULL, position bigint NOT NULL)",
    # When the row first became visible here: end-to-end latency is measured against it.
    "ALTER TABLE surveys ADD COLUMN IF NOT EXISTS projected_at timestamptz"
    " NOT NULL DEFAULT clock_timestamp()",
    # Who recorded an assisted answer (the event's actor), beside whom it is attributed to.
    "ALTER TABLE surveys ADD COLUMN IF NOT EXISTS recorded_by text",
    "CREATE INDEX IF NOT EXISTS surveys_case ON surveys (case_id)",
    "CREATE INDEX IF NOT EXISTS surveys_resident ON surveys (resident_id)"
    " WHERE status IN ('requested', 'sent')",
    "CREATE INDEX IF NOT EXISTS surveys_to_send ON surveys (send_at) WHERE status = 'requested'",
    "CREATE INDEX IF NOT EXISTS surveys_to_expire ON surveys (expires_at)"
    " WHERE status IN ('requested', 'sent')",
    # The rating pad's window (``pads.py``, asked every 1.5 s by every pad): its tablet
    # surveys by the resolution's moment.
    "CREATE INDEX IF NOT EXISTS surveys_window ON surveys (center_id, counter_id, send_at)"
    " WHERE channel = 'tablet'",
    # The tablet surveys sent and waiting: the scheduler asks those the window can no longer
    # offer their resident where the resident is (``window_offer``, ``scheduler.py``).
    "CREATE INDEX IF NOT EXISTS surveys_on_tablet ON surveys (sent_at)"
    " WHERE channel = 'tablet' AND status = 'sent'",
    "CREATE TABLE IF NOT EXISTS rectifications ("
    " rectification_id uuid PRIMARY KEY, case_id uuid NOT NULL, center_id text NOT NULL,"
    " survey_id uuid, resident_id uuid, rating text NOT NULL, summary text NOT NULL,"
    " opened_at timestamptz NOT NULL, deadline_on date NOT NULL, status text NOT NULL,"
    " completed_at timestamptz, completed_on date, outcome text, actions text, on_time boolean,"
    " revisit_survey_id uuid, version int NOT NULL, position bigint NOT NULL)",
    "CREATE INDEX IF NOT EXISTS rectifications_case ON rectifications (case_id)",
    # official | provisional: whether deadline_on was worked out on a year without a schedule.
    "ALTER TABLE rectifications ADD COLUMN IF NOT EXISTS basis text NOT NULL"
    " DEFAULT 'official'",
    "CREATE INDEX IF NOT EXISTS rectifications_open ON rectifications (center_id, deadline_on)"
    " WHERE status = 'open'",
    # The resident's verdict (was it solved?), how staff came by an answer they recorded,
    # and the reasons picked for a bad review (RatingGiven v2, RectificationOpened v3).
    "ALTER TABLE surveys ADD COLUMN IF NOT EXISTS verdict text",
    "ALTER TABLE surveys ADD COLUMN IF NOT EXISTS staff_channel text",
    "ALTER TABLE surveys ADD COLUMN IF NOT EXISTS reason_tags jsonb",
    "ALTER TABLE rectifications ADD COLUMN IF NOT EXISTS reason_tags jsonb NOT NULL"
    " DEFAULT '[]'",
    # 好差评 (issue 18): the supervisor's triage, the clerk's appeal and its decision, and the
    # revisit's attempt (a named resident's unanswered revisit is asked again).
    *(f"ALTER TABLE rectifications ADD COLUMN IF NOT EXISTS {column}" for column in (
        "track text", "triaged_at timestamptz", "appeal text", "appealed_by text",
        "appeal_reasons text", "appeal_grounds text", "appeal_decided_by text",
        "appeal_decision_reasons text", "revisit_attempt int")),
    # Missed on a provisional day the published schedule moves: kept, said once
    # (RectificationDeadlineRevised.published_deadline_on), not re-read (replanning.py).
    # NULL: never revised.
    "ALTER TABLE rectifications ADD COLUMN IF NOT EXISTS deadline_kept boolean",
    "CREATE INDEX IF NOT EXISTS rectifications_appeals ON rectifications (center_id)"
    " WHERE appeal = 'pending'",
    # A live batch's rows and changes, each as one composite (``bulk.RowType``: never
    # altered, a new shape is a new name; a rebuild's switch leaves them in the live schema).
    SURVEY_ROW.ddl,
    RECTIFICATION_ROW.ddl,
    SURVEY_CHANGE.ddl,
    RECTIFICATION_CHANGE.ddl,
]

def _uuid(value: Any) -> UUID | None:
    return UUID(value) if value else None


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


SURVEY_COLUMNS = ("survey_id", "case_id", "center_id", "counter_id", "clerk_id", "service_item",
                  "purpose", "channel", "resident_id", "rectification_id", "requested_at",
                  "send_at", "expires_at", "version", "position")
RECTIFICATION_COLUMNS = ("rectification_id", "case_id", "center_id", "survey_id", "resident_id",
                         "rating", "summary", "opened_at", "deadline_on", "version", "position",
                         "basis", "reason_tags")
#: Every column a patch may set, None until it does (the rows as the live INSERT leaves them).
SURVEY_PATCHED = ("status", "sent_at", "answered_at", "level", "comment", "aspects", "via",
                  "answered_by", "recorded_by", "closed_at", "withdrawn_reason", "verdict",
                  "staff_channel", "reason_tags")
RECTIFICATION_PATCHED = ("status", "completed_at", "completed_on", "outcome", "actions",
                         "on_time", "revisit_survey_id", "track", "triaged_at", "appeal",
                         "appealed_by", "appeal_reasons", "appeal_grounds",
                         "appeal_decided_by", "appeal_decision_reasons", "revisit_attempt",
                         "deadline_kept")


@dataclass
class _Plan:
    """What a batch does: new surveys and rectifications (in order), one patch per row.

    ``early_*`` are the patches of steps the batch has ahead of their survey's request or
    their rectification's opening (on the stream before it): applied before the INSERTs, as
    one event at a time applies them, so they change a row only if an earlier batch made it
    (none otherwise), wherever the batches end."""

    surveys: list[tuple[Any, ...]] = field(default_factory=list)
    rectifications: list[tuple[Any, ...]] = field(default_factory=list)
    survey_patch: dict[UUID, dict[str, Any]] = field(default_factory=lambda: defaultdict(dict))
    rect_patch: dict[UUID, dict[str, Any]] = field(default_factory=lambda: defaultdict(dict))
    early_survey: dict[UUID, dict[str, Any]] = field(default_factory=lambda: defaultdict(dict))
    early_rect: dict[UUID, dict[str, Any]] = field(default_factory=lambda: defaultdict(dict))


_MADE = ("SurveyRequested", "RectificationOpened")


def _plan(events: Sequence[Envelope]) -> _Plan:
    plan = _Plan()
    survey_patch, rect_patch = plan.survey_patch, plan.rect_patch
    made: set[UUID] = set()
    for e in events:
        if e.service != "feedback":
            continue
        p = e.payload
        if e.type in _MADE and e.aggregate_id not in made:
            made.add(e.aggregate_id)
            # The steps the batch had of it so far were ahead of its making.
            patches, early = (survey_patch, plan.early_survey) if e.type == _MADE[0] else (
                rect_patch, plan.early_rect)
            if e.aggregate_id in patches:
                early[e.aggregate_id] = patches.pop(e.aggregate_id)
        if e.type == "SurveyRequested":
            plan.surveys.append((e.aggregate_id, e.case_id, e.center_id, p["counter_id"],
                                 p["clerk_id"], p["service_item"], p["purpose"], p["channel"],
                                 _uuid(p["resident_id"]), _uuid(p["rectification_id"]),
                                 e.occurred_at, _at(p["send_at"]), _at(p["expires_at"]),
                                 e.aggregate_version, e.position))
            continue
        if e.type == "RectificationOpened":
            plan.rectifications.append((e.aggregate_id, e.case_id, e.center_id,
                                        _uuid(p.get("survey_id")), _uuid(p["resident_id"]),
                                        p["rating"], p["summary"], e.occurred_at,
                                        date.fromisoformat(p["deadline_on"]),
                                        e.aggregate_version, e.position, p["basis"],
                                        orjson.dumps(p.get("reason_tags") or []).decode()))
            continue
        if e.type in ("SurveySent", "SurveyRedirected", "RatingGiven", "SurveyExpired",
                      "SurveyWithdrawn", "SurveyDeclined"):
            patch = survey_patch[e.aggregate_id]
            if e.type == "SurveySent":
                patch.update(status="sent", sent_at=e.occurred_at)
            elif e.type == "SurveyRedirected":  # to be sent again, on its new channel
                patch.update(status="requested", sent_at=None, channel=p["channel"],
                             send_at=_at(p["send_at"]), expires_at=_at(p["expires_at"]))
            elif e.type == "RatingGiven":
                patch.update(status="answered", answered_at=e.occurred_at,
                             level=p["level"], comment=p["comment"],
                             aspects=orjson.dumps(p["aspects"]).decode(), via=p["via"],
                             answered_by=p["clerk_id"] or e.actor, recorded_by=e.actor,
                             verdict=p.get("verdict"), staff_channel=p.get("staff_channel"),
                             reason_tags=orjson.dumps(p.get("reason_tags") or []).decode())
            elif e.type == "SurveyExpired":
                patch.update(status="expired", closed_at=e.occurred_at)
            elif e.type == "SurveyDeclined":  # the resident would rather not rate
                patch.update(status="declined", closed_at=e.occurred_at)
            else:
                patch.update(status="withdrawn", closed_at=e.occurred_at,
                             withdrawn_reason=p["reason"])
        elif e.type == "RectificationCompleted":
            rect_patch[e.aggregate_id].update(
                status="completed", completed_at=e.occurred_at,
                completed_on=date.fromisoformat(p["completed_on"]), outcome=p["outcome"],
                actions=p["actions"], on_time=p["on_time"])
        elif e.type == "RevisitRequested":
            rect_patch[e.aggregate_id].update(revisit_survey_id=UUID(p["survey_id"]),
                                              revisit_attempt=p["attempt"])
        elif e.type == "RectificationTriaged":
            rect_patch[e.aggregate_id].update(
                track=p["track"], triaged_at=e.occurred_at, basis=p["basis"],
                deadline_on=date.fromisoformat(p["deadline_on"]))
        elif e.type == "RectificationAppealed":
            rect_patch[e.aggregate_id].update(appeal="pending", appealed_by=e.actor,
                                              appeal_reasons=p["reasons"])
        elif e.type == "RectificationAppealDecided":
            rect_patch[e.aggregate_id].update(
                appeal=p["decision"], appeal_grounds=p["grounds"], appeal_decided_by=e.actor,
                appeal_decision_reasons=p["reasons"])
        elif e.type == "RectificationDeadlineRevised":
            rect_patch[e.aggregate_id].update(
                deadline_on=date.fromisoformat(p["deadline_on"]), basis=p["basis"],
                deadline_kept=p.get("published_deadline_on") is not None)
        else:
            continue
        target = survey_patch if e.aggregate_id in survey_patch else rect_patch
        target[e.aggregate_id].update(version=e.aggregate_version, position=e.position)
    return plan


def _fold(inserted: list[tuple[Any, ...]], columns: tuple[str, ...], status: str,
          patched: tuple[str, ...], patches: dict[UUID, dict[str, Any]],
          ) -> tuple[list[dict[str, Any]], dict[UUID, dict[str, Any]]]:
    """The rows a batch inserts with its patches folded in (the first insert of a key wins,
    as ON CONFLICT DO NOTHING), and the patches left for rows of earlier batches."""
    new: dict[UUID, dict[str, Any]] = {}
    for values in inserted:
        if values[0] not in new:
            row = dict.fromkeys(patched)
            row.update(zip(columns, values, strict=True))
            row["status"] = status
            new[values[0]] = row
    earlier: dict[UUID, dict[str, Any]] = {}
    for ident, patch in patches.items():
        row = new.get(ident)
        if row is None:
            earlier[ident] = patch
        else:
            row.update(patch)
    return list(new.values()), earlier


#: The channel the survey scheduler listens on, for the service's own schema (a name of at
#: most 63 bytes, whatever the schema's): ``FeedbackViews`` notifies it on every batch that
#: writes ``surveys``.
CHANNEL = "SELECT 'sixstep_surveys_' || md5(current_schema())"
NOTIFY = f"SELECT pg_notify(({CHANNEL}), '')"


@dataclass(slots=True)
class _Written:
    """What a live batch writes to one table: its new rows (tuples of ``row_type``'s
    fields) with the batch's later changes folded in, and the changes of rows of earlier
    batches (``earlier``; ``patches``: every change of the batch, for a new row already
    there)."""

    table: str
    key: str
    rows: list[tuple[Any, ...]]
    earlier: dict[UUID, dict[str, Any]]
    #: ``earlier`` as ``change`` takes them (``bulk.patch_rows``).
    earlier_rows: list[tuple[Any, ...]]
    patches: dict[UUID, dict[str, Any]]
    row_type: bulk.RowType
    change: bulk.RowType


@dataclass(slots=True)
class _Prepared:
    """A live batch's work that needs no database (``FeedbackViews.prepare``)."""

    plan: _Plan
    tables: list[_Written]


class FeedbackViews:
    """Applies feedback events to ``surveys`` and ``rectifications`` in the consumer's
    transaction.

    A survey is mostly requested and sent in the same batch (a tablet's goes out at once), so
    the rows a batch creates are written once with its later changes folded in (``_fold``),
    in one ``INSERT ... unnest`` per table, not inserted and then updated (a second row
    version, and a new entry in every index, since the status is in each one's predicate).
    A row already there (its request redelivered) keeps it, as ``ON CONFLICT DO NOTHING``
    kept it, and gets the batch's changes as a patch. The rows of earlier batches are
    patched in one ``UPDATE ... FROM unnest`` per table (``bulk.update_rows``).

    ``copy_apply`` (a rebuild's staging tables) leaves the same rows: the same fold, by COPY.
    """

    def __init__(self) -> None:
        self._tables = bulk.Tables()

    def prepare(self, events: Sequence[Envelope]) -> _Prepared:
        """The batch's plan and its new rows folded (no database): made while the batch
        before is applied (``shared.bus.consumer.Preparing``)."""
        plan = _plan(events)
        tables = []
        for table, key, inserted, columns, status, patched, patches, row_type, change in (
                ("surveys", "survey_id", plan.surveys, SURVEY_COLUMNS, "requested",
                 SURVEY_PATCHED, plan.survey_patch, SURVEY_ROW, SURVEY_CHANGE),
                ("rectifications", "rectification_id", plan.rectifications,
                 RECTIFICATION_COLUMNS, "open", RECTIFICATION_PATCHED, plan.rect_patch,
                 RECTIFICATION_ROW, RECTIFICATION_CHANGE)):
            rows, earlier = _fold(inserted, columns, status, patched, patches)
            get = itemgetter(*row_type.columns)  # a row's values in its type's order
            tables.append(_Written(table, key, [get(row) for row in rows], earlier,
                                   bulk.patch_rows(change, earlier), patches, row_type,
                                   change))
        return _Prepared(plan, tables)

    async def apply(self, conn: asyncpg.Connection, events: Sequence[Envelope],
                    prepared: object | None = None) -> None:
        ready = prepared if isinstance(prepared, _Prepared) else self.prepare(events)
        plan = ready.plan
        # Steps ahead of their row's making: on the row only if an earlier batch made it.
        await bulk.update_rows(conn, self._tables, "surveys", "survey_id", plan.early_survey,
                               row_type=SURVEY_CHANGE)
        await bulk.update_rows(conn, self._tables, "rectifications", "rectification_id",
                               plan.early_rect, row_type=RECTIFICATION_CHANGE)
        for t in ready.tables:
            earlier, earlier_rows = t.earlier, t.earlier_rows
            if t.rows:
                written = {r[t.key] for r in await bulk.insert_rows(
                    conn, self._tables, t.table, t.row_type.columns, t.rows,
                    conflict=f"({t.key}) DO NOTHING", returning=(t.key,),
                    row_type=t.row_type)}
                if len(written) < len(t.rows):
                    at = t.row_type.columns.index(t.key)  # its key's place, not assumed first
                    earlier = {**earlier, **{row[at]: t.patches[row[at]] for row in t.rows
                                             if row[at] not in written
                                             and t.patches.get(row[at])}}
                    earlier_rows = bulk.patch_rows(t.change, earlier)
            await bulk.update_patched(conn, t.table, t.key, t.change, earlier_rows)
        if plan.surveys or plan.survey_patch or plan.early_survey:
            # The survey scheduler, idle until the next moment it knows of, wakes: a survey
            # requested or redirected may be due now (delivered at the commit).
            await conn.execute(NOTIFY)

    async def copy_apply(self, conn: asyncpg.Connection, events: Sequence[Envelope]) -> None:
        # Steps ahead of a row this batch makes change nothing: had an earlier batch made
        # it, the COPY below fails and the live handler applies the batch.
        plan = _plan(events)
        surveys, survey_patch = _fold(plan.surveys, SURVEY_COLUMNS, "requested",
                                      SURVEY_PATCHED, plan.survey_patch)
        rects, rect_patch = _fold(plan.rectifications, RECTIFICATION_COLUMNS, "open",
                                  RECTIFICATION_PATCHED, plan.rect_patch)
        await bulk.copy_rows(conn, "surveys", (*SURVEY_COLUMNS, *SURVEY_PATCHED), surveys)
        await bulk.copy_rows(conn, "rectifications",
                             (*RECTIFICATION_COLUMNS, *RECTIFICATION_PATCHED), rects)
        await bulk.update_rows(conn, self._tables, "surveys", "survey_id", survey_patch)
        await bulk.update_rows(conn, self._tables, "rectifications", "rectification_id",
                               rect_patch)


READ_MODEL = ReadModel(
    service="feedback", consumer=CONSUMER, handler=lambda _settings: FeedbackViews(), ddl=DDL,
    subjects=lambda settings: [f"{settings.subject_prefix}.feedback.*.*"],
    keys={"surveys": "case_id", "rectifications": "case_id"},
    volatile=frozenset({"projected_at"}),
    # Surveys and rectifications are found by their ids only: a rebuild makes these last.
    built_after=frozenset({"surveys_case", "surveys_resident", "surveys_to_send",
                           "surveys_to_expire", "surveys_window", "surveys_on_tablet",
                           "rectifications_case", "rectifications_open",
                           "rectifications_appeals"}),
)
"""What ``sixstep rebuild feedback`` folds the log with (surveys and rectifications); the
center's figures are ``feedback.figures`` (``figures.READ_MODEL``)."""
