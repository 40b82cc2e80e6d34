"""The rating pad at the window: a tablet bound to one center and one window.

A supervisor pairs it once (``POST /pads/pairings`` -> an 8-digit code, valid 10 minutes, good
for one pairing); the tablet trades the code for a pad token (``POST /pads/pair``) that it
keeps. The pad token is no staff token: it reads one thing, the window's survey now waiting
(``GET /pads/next``), and the survey is answered through its own link, as on a phone (one
answer per survey, the survey's rules). No resident data reaches the pad.

A window has one pad: pairing another there ends the tokens of those paired before (a pad
replaced, lost or stolen, a token copied from the tablet). Each token names its pairing
(``pad_id``); before, a token was good for ever, from anywhere, and whoever kept one could
take every survey offered at that window and answer it in the resident's place.

    POST /pads/pairings   supervisor: a pairing code for one window of their center
    POST /pads/pair       the tablet: code -> pad token (single use)
    GET  /pads/next       the tablet (X-Pad-Token): the window's clerk, and its survey if one waits
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated
from uuid import UUID, uuid4

from fastapi import APIRouter, Header, Request
from pydantic import BaseModel, ConfigDict, Field

from services.feedback.sending import survey_link
from services.feedback.window_offer import SHOWN_MINUTES, TOGETHER, offered
from shared.http.auth import Supervisor
from shared.http.dependencies import PoolDep, SettingsDep
from shared.http.errors import problem
from shared.http.limits import TokenBuckets
from shared.security import base64url
from shared.settings import derived_key

CODE_MINUTES = 10
PAIR_TRIES_PER_MINUTE = 5  # per client address
PAIR_TRIES_PER_MINUTE_OVERALL = 60  # per replica, all addresses together
#: The window's latest tablet resolutions the pad looks among for one still waiting (one
#: visit's several affairs, a family at the window together).
PAD_RECENT = 10
WINDOW = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$"

DDL = [
    "CREATE TABLE IF NOT EXISTS pad_pairings ("
    " code_hash text PRIMARY KEY, center_id text NOT NULL, counter_id text NOT NULL,"
    " created_by text NOT NULL, expires_at timestamptz NOT NULL, used_at timestamptz)",
    # The pad a used code paired (named by its token), and when a later pairing at the same
    # window ended it.
    "ALTER TABLE pad_pairings ADD COLUMN IF NOT EXISTS pad_id uuid",
    "ALTER TABLE pad_pairings ADD COLUMN IF NOT EXISTS revoked_at timestamptz",
    "CREATE UNIQUE INDEX IF NOT EXISTS pad_pairings_pad ON pad_pairings (pad_id)",
    "CREATE INDEX IF NOT EXISTS pad_pairings_window ON pad_pairings (center_id, counter_id)",
]

pads = APIRouter(prefix="/pads", tags=["pads"])


class PairingCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    counter_id: str = Field(pattern=WINDOW, description="The window the pad stands at.")


class PairingPublic(BaseModel):
    code: str = Field(description="8 digits, typed on the tablet once.")
    center_id: str
    counter_id: str
    expires_at: datetime


class Pair(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=r"^\d{8}$")


class PadPublic(BaseModel):
    pad_token: str
    center_id: str
    counter_id: str


class PadSurvey(BaseModel):
    survey_id: str
    link: str


class PadNow(BaseModel):
    center_id: str
    counter_id: str
    clerk_id: str | None = Field(None, description="The clerk last serving at the window (工号).")
    clerk_name: str | None = Field(None, description=(
        "That clerk's name as the staff directory has it (``STAFF_NAMES``), if it does."))
    survey: PadSurvey | None = None


@dataclass(frozen=True)
class PairingLimits:
    """Tries at ``POST /pads/pair``: PAIR_TRIES_PER_MINUTE per client address, and
    PAIR_TRIES_PER_MINUTE_OVERALL for the whole replica (429 rate_limited + Retry-After)."""

    per_address: TokenBuckets = field(
        default_factory=lambda: TokenBuckets(PAIR_TRIES_PER_MINUTE / 60.0, PAIR_TRIES_PER_MINUTE))
    overall: TokenBuckets = field(default_factory=lambda: TokenBuckets(
        PAIR_TRIES_PER_MINUTE_OVERALL / 60.0, PAIR_TRIES_PER_MINUTE_OVERALL))


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def _key(secret: str) -> bytes:
    return derived_key(secret, b"sixstep rating pad")


def issue_pad_token(secret: str, center_id: str, counter_id: str, pad_id: UUID) -> str:
    body = json.dumps({"c": center_id, "w": counter_id, "p": str(pad_id)},
                      separators=(",", ":")).encode()
    mac = hmac.new(_key(secret), body, hashlib.sha256).digest()
    return f"{base64url.encode(body)}.{base64url.encode(mac)}"


def read_pad_token(secret: str, token: str) -> tuple[str, str, UUID | None]:
    """The pad's center, window and pad id (None: a token of a release before pad ids); a
    401 unless this service signed the token."""
    try:
        body_text, _, mac_text = token.partition(".")
        body = base64url.decode(body_text)
        mac = base64url.decode(mac_text)
        if not hmac.compare_digest(mac, hmac.new(_key(secret), body, hashlib.sha256).digest()):
            raise ValueError
        claims = json.loads(body)
        pad_id = UUID(claims["p"]) if "p" in claims else None
        return str(claims["c"]), str(claims["w"]), pad_id
    except (ValueError, KeyError, TypeError, AttributeError):
        raise problem(401, "pad_token_invalid", "pair the pad again") from None


@pads.post("/pairings", response_model=PairingPublic, status_code=201,
           summary="A pairing code for a rating pad at one window (supervisor)")
async def create_pairing(body: PairingCreate, request: Request, pool: PoolDep,
                         supervisor: Supervisor) -> PairingPublic:
    if supervisor.center_id is None:
        raise problem(403, "forbidden_center", "a pad belongs to one center")
    code = f"{secrets.randbelow(10**8):08d}"
    expires_at = request.app.state.feedback.clock.now() + timedelta(minutes=CODE_MINUTES)
    await pool.execute(
        "INSERT INTO pad_pairings (code_hash, center_id, counter_id, created_by, expires_at)"
        " VALUES ($1, $2, $3, $4, $5)", _hash(code), supervisor.center_id, body.counter_id,
        supervisor.sub, expires_at)
    return PairingPublic(code=code, center_id=supervisor.center_id, counter_id=body.counter_id,
                         expires_at=expires_at)


@pads.post("/pair", response_model=PadPublic, summary="The tablet trades its pairing code "
           "for a pad token (once)")
async def pair(body: Pair, request: Request, pool: PoolDep,
               settings: SettingsDep) -> PadPublic:
    # Codes are guessable only by trying: a few tries a minute per address, and a ceiling for
    # the whole service so that many addresses cannot sweep the 10^8 codes either.
    limits: PairingLimits = request.app.state.pad_pair_limits
    limits.per_address.check(request.client.host if request.client else "?")
    limits.overall.check("*")
    now = request.app.state.feedback.clock.now()
    pad_id = uuid4()
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "UPDATE pad_pairings SET used_at = $2, pad_id = $3 WHERE code_hash = $1"
            " AND used_at IS NULL AND expires_at > $2 RETURNING center_id, counter_id",
            _hash(body.code), now, pad_id)
        if row is None:
            raise problem(404, "pairing_code_unknown",
                          "no such pairing code, or it was used or has expired")
        # One pad a window: the pads paired there before answer 401 from now on. Pairings at
        # a window go one after the other: two at once each saw only the pads committed
        # before, not the other, and both stayed good; the later now ends the earlier.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                           f"sixstep pad window {row['center_id']}/{row['counter_id']}")
        await conn.execute(
            "UPDATE pad_pairings SET revoked_at = $3 WHERE center_id = $1 AND counter_id = $2"
            " AND pad_id IS NOT NULL AND pad_id <> $4 AND revoked_at IS NULL",
            row["center_id"], row["counter_id"], now, pad_id)
    secret = settings.survey_token_secret.get_secret_value()
    return PadPublic(
        pad_token=issue_pad_token(secret, row["center_id"], row["counter_id"], pad_id),
        center_id=row["center_id"], counter_id=row["counter_id"])


@pads.get("/next", response_model=PadNow,
          summary="The pad's window now: its clerk, and the survey waiting there if any")
async def next_survey(request: Request, pool: PoolDep, settings: SettingsDep,
                      x_pad_token: Annotated[str, Header()]) -> PadNow:
    secret = settings.survey_token_secret.get_secret_value()
    center_id, counter_id, pad_id = read_pad_token(secret, x_pad_token)
    # The window's pad now: its own pairing not ended by a later one (a token of a release
    # before pad ids: while no pad has been paired at its window since).
    current = await pool.fetchval(
        "SELECT revoked_at IS NULL FROM pad_pairings WHERE pad_id = $1", pad_id) \
        if pad_id is not None else not await pool.fetchval(
            "SELECT EXISTS (SELECT 1 FROM pad_pairings WHERE center_id = $1 AND counter_id = $2"
            " AND pad_id IS NOT NULL)", center_id, counter_id)
    if not current:
        raise problem(401, "pad_token_invalid",
                      "another pad was paired at this window since: pair the pad again")
    now = request.app.state.feedback.clock.now()  # the moments below were written on it
    # The window's clerk: whoever last opened a case there or was last asked about there
    # (a survey), the later of the two; after a shift change, the clerk now at the window
    # from their first resident on, not the last shift's until their first survey. Only a
    # resolution's survey: a revisit names the clerk reviewed days ago and is requested when
    # the supervisor acts on the board (or when the last one expired), not at the window.
    # A tablet's survey counts from the resolution (its send_at, the window's own moment, as
    # the case's opening is), not from when feedback requested it: read late (restarted,
    # behind), the last shift's resolution would outrank the next clerk's first case.
    # A survey asked by SMS or a call says nothing of the window: its resident is not there
    # (a case finished in the back office the next day, a phone line's case), and counted
    # from when feedback requested it, it put yesterday's clerk on today's pad.
    # A resident back about a case opened at another window (a return trip) is received by
    # the clerk there (the trip's clerk, ``present_clerk``), and their survey is asked there:
    # it names the case's first responder, of the other window, so it does not count here;
    # back at the window where the case was opened, the survey counts under the trip's clerk
    # (yesterday's first responder is not who sits there today).
    # Each part is the last row of an index of the window (``projections.DDL``): the pad asks
    # every 1.5 s, and a scan of every center's surveys each time cost 70-90 ms at 400,000.
    clerk = await pool.fetchval(
        "SELECT clerk_id FROM ((SELECT CASE WHEN c.present_counter = s.counter_id"
        "  THEN coalesce(c.present_clerk, s.clerk_id) ELSE s.clerk_id END, s.send_at AS at"
        "  FROM surveys s LEFT JOIN intake_cases c ON c.case_id = s.case_id"
        "  WHERE s.center_id = $1 AND s.counter_id = $2 AND s.channel = 'tablet'"
        "  AND s.purpose = 'resolution' AND (c.case_id IS NULL OR c.counter_id = s.counter_id)"
        "  ORDER BY s.send_at DESC LIMIT 1)"
        " UNION ALL (SELECT clerk_id, opened_at FROM intake_cases WHERE center_id = $1"
        "  AND counter_id = $2 AND opened_at IS NOT NULL ORDER BY opened_at DESC LIMIT 1)"
        " UNION ALL (SELECT present_clerk, present_at FROM intake_cases WHERE center_id = $1"
        "  AND present_counter = $2 AND present_at IS NOT NULL AND present_clerk IS NOT NULL"
        "  ORDER BY present_at DESC LIMIT 1))"
        " AS seen ORDER BY at DESC LIMIT 1", center_id, counter_id)
    # The survey of the window's latest resolution still waiting (by the window's own
    # moments), sent in the last few minutes, while no case has been opened there since nor
    # a resident received back about another case (the next resident):
    # feedback reading the window's day late (restarted, behind) sends a survey of a resident
    # served long ago only now, and a backlog in one tick; shown by when it was sent, such a
    # survey was offered to whoever stood at the window, and they rated a visit not theirs.
    # Not only the latest: one trip's affairs, or a family served together, are resolved one
    # after the other with no case opened between; once the last is rated the one before is
    # next (the window's last few resolutions, ``PAD_RECENT``, read by the index).
    # Nor once another resident has sat down at the window (its latest trip) well after the
    # survey's resident was last there (the case's opening or their trip about it;
    # ``TOGETHER``): a case opened in the morning and finished in the back office that
    # afternoon asks the window's tablet (the same day), where the resident sitting there
    # since before the resolution rated it; "no case opened since" looks only after it.
    row = await pool.fetchrow(
        "SELECT s.survey_id, s.expires_at FROM (SELECT survey_id, case_id, expires_at, status,"
        "  sent_at, send_at FROM surveys WHERE center_id = $1 AND counter_id = $2"
        f"  AND channel = 'tablet' ORDER BY send_at DESC LIMIT {PAD_RECENT}) AS s"
        f" WHERE {offered('s', '$1', '$2', '$3', '$4', '$5')} ORDER BY s.send_at DESC LIMIT 1",
        center_id, counter_id, now, now - timedelta(minutes=SHOWN_MINUTES), TOGETHER)
    survey = None
    if row is not None:
        token = request.app.state.feedback.tokens.issue(row["survey_id"], row["expires_at"],
                                                        at_window=True)
        survey = PadSurvey(survey_id=str(row["survey_id"]),
                           link=survey_link("/s", row["survey_id"], token) + "&pad=1")
    return PadNow(center_id=center_id, counter_id=counter_id, clerk_id=clerk,
                  clerk_name=settings.staff_names.get(clerk) if clerk else None, survey=survey)
