"""One settings object per process, built at start-up from the environment (prefix-free names)."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import date, time
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared.contracts.feedback import DEFAULT_REASON_TAGS
from shared.contracts.fields import CODE_PATTERN, EARLIEST_DAY

ServiceName = Literal["intake", "followup", "feedback"]
ROLES = ("api", "workers", "fanout")
"""What a process may do (``ROLES``; all three by default): serve HTTP, run the relay, the
consumers and the schedulers, run follow-up's policy fan-out."""
#: The signatures taken from an identity provider (``OIDC_ALGORITHMS``).
OIDC_ALGORITHMS = ("RS256", "ES256")

DEV_AUTH_KEY = "dev-only-sixstep-auth-key-change-me-outside-development"
DEV_VAULT_MASTER_KEY = "dev-only-sixstep-vault-master-key-change-me"
DEV_VAULT_LOOKUP_KEY = "dev-only-sixstep-vault-lookup-key-change-me"
DEV_SURVEY_TOKEN_SECRET = "dev-only-survey-token-secret"

#: The context under which the command digests' key is drawn from SURVEY_TOKEN_SECRET.
COMMAND_DIGEST_CONTEXT = b"sixstep-command-digest-v1"
OPEN311_FORMS_CONTEXT = b"sixstep-open311-forms-v1"


def derived_key(secret: str, context: bytes) -> bytes:
    """A key of its own for one use of ``secret``, named by ``context``: a MAC made with one
    use's key is none of another's, and the secret itself is never used twice."""
    return hmac.new(secret.encode(), context, hashlib.sha256).digest()


def command_digest_key(secret: str) -> bytes:
    """The key of commands' digests (``shared.eventstore.command_path.CommandDigests``):
    drawn from ``secret`` with a context of its own, as the referral links' key is, so a
    digest is no survey link's token."""
    return derived_key(secret, COMMAND_DIGEST_CONTEXT)

#: Every setting whose shipped default is a development secret, with that secret: outside
#: development each one must be set (``Settings.development_defaults``). A new secret with a
#: built-in default joins this list, and the production start-up test covers it.
DEVELOPMENT_DEFAULTS: dict[str, str] = {
    "auth_keys": DEV_AUTH_KEY,
    "vault_master_key": DEV_VAULT_MASTER_KEY,
    "vault_old_master_keys": DEV_VAULT_MASTER_KEY,
    "vault_lookup_key": DEV_VAULT_LOOKUP_KEY,
    "survey_token_secret": DEV_SURVEY_TOKEN_SECRET,
}

#: The mark of the placeholders the shipped manifests hold (deploy/k8s/config.yaml). Some are
#: 32 characters, as long as a real key must be, so the length checks alone let them through:
#: outside development no secret setting may contain it (any case).
SHIPPED_PLACEHOLDER = "change-me"

#: The secret settings an operator fills from the manifests' placeholders.
PLACEHOLDER_SETTINGS = (*DEVELOPMENT_DEFAULTS, "ops_token", "database_url", "nats_password")


def _plain(value: SecretStr | str) -> str:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


class DevelopmentDefaults(ValueError):
    """Production was asked to run with a development secret (names the settings)."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        super().__init__(
            "ENVIRONMENT=production refuses the development keys and the shipped "
            f"placeholders: {', '.join(names)} still {'holds' if len(names) == 1 else 'hold'} "
            "a development key or a CHANGE-ME placeholder; set your own (a long random "
            "value, e.g. openssl rand -hex 32)")


class NatsCredentialsMissing(ValueError):
    """Production was asked to sign in to NATS as anyone (no user, no creds file)."""

    def __init__(self) -> None:
        super().__init__(
            "ENVIRONMENT=production refuses to reach NATS without credentials: set NATS_USER "
            "and NATS_PASSWORD (or NATS_CREDS_FILE, or a user in NATS_URL), the service's own "
            "user of deploy/nats/nats.conf; or NATS_SECURED_OTHERWISE=true when the servers "
            "admit it otherwise (TLS client certificates) and keep every other client out")


def without_password(url: str) -> str:
    """A server's URL as it may be shown: its password (a NATS token, the user part of a
    ``nats://`` or ``tls://`` URL, too) as ``***``; each URL of a comma-separated list (a
    NATS cluster) on its own."""
    if "," in url:
        return ",".join(u[:len(u) - len(u.lstrip())] + without_password(u.lstrip())
                        for u in url.split(","))
    if "@" not in url:
        return url
    parts = urlsplit(url)
    token = parts.scheme in ("nats", "tls") and parts.username is not None
    if parts.password is None and not token:
        return url
    user = "***" if parts.password is None else f"{parts.username}:***"
    netloc = f"{user}@{parts.netloc.rpartition('@')[2]}"
    return urlunsplit(parts._replace(netloc=netloc))


def parse_partitions(spec: str, partitions: int) -> list[int]:
    """'0-3,8' -> [0, 1, 2, 3, 8]; every number must be below ``partitions``."""
    owned: set[int] = set()
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        low, _, high = part.partition("-")
        try:
            first, last = int(low), int(high or low)
        except ValueError:
            raise ValueError(f"partition range {part!r} is not like '0-7' or '3'") from None
        if not 0 <= first <= last < partitions:
            raise ValueError(f"partition range {part!r} is outside 0-{partitions - 1}")
        owned.update(range(first, last + 1))
    return sorted(owned)


class Settings(BaseSettings):
    """Everything a sixstep process needs to know about where it runs.

    Nothing reads the environment at import time: call ``Settings()`` in a composition root.
    """

    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    database_url: str = Field(
        "postgresql://postgres@127.0.0.1:5432/postgres",
        description="PostgreSQL DSN; each service keeps its data in its own schema.",
    )
    nats_url: str = Field("nats://127.0.0.1:4222", description=(
        "NATS server(s), comma separated. A user and password in it (nats://user:pass@host) "
        "sign in as NATS_USER / NATS_PASSWORD do."))
    nats_user: str | None = Field(None, description=(
        "The NATS user this process signs in as, with NATS_PASSWORD: deploy/nats/nats.conf has "
        "one per service (intake, followup, feedback) and one for operators (ops)."))
    nats_password: SecretStr | None = Field(None, description="NATS_USER's password.")
    nats_creds_file: Path | None = Field(None, description=(
        "A NATS credentials file (a user JWT and its nkey seed, from nsc) to sign in with "
        "instead of NATS_USER / NATS_PASSWORD."))
    nats_secured_otherwise: bool = Field(False, description=(
        "Set when the NATS servers admit this process without a password or a creds file and "
        "still keep others out (TLS client certificates mapped to users, a network nothing "
        "else reaches): only then does ENVIRONMENT=production start without NATS credentials."))
    stream_name: str = Field("SIXSTEP", description="The one replayable JetStream stream.")
    subject_prefix: str = Field("sixstep", description="First token of every event subject.")
    stream_replicas: int = Field(1, ge=1, le=5)
    stream_max_age_days: int = Field(0, ge=0, description="0 keeps events forever.")
    stream_duplicate_window_s: int = Field(600, ge=1)
    partitions: int = Field(16, ge=1, le=1024, description="Case-id partitions on subjects.")
    schema_prefix: str = Field("", description="Prefix for service schemas (tests isolate runs).")

    center_timezone: str = "Asia/Shanghai"
    catalogue_paths: list[Path] = Field(
        default_factory=list,
        description="Extra catalogue files (JSON) merged over the shipped one.")
    eligibility_rules_paths: list[Path] = Field(
        default_factory=list,
        description="Extra eligibility rules files (JSON) merged over the shipped ones.")

    # -- Open311 GeoReport v2 beside intake's own API (services/intake/open311/) ----------
    open311_api_keys: dict[str, str] = Field(default_factory=dict, description=(
        "api_key -> center_id as JSON. Each key is a counter-app credential scoped to one "
        "center. Write the key itself (16+ characters) or 'sha256:<64 hex>' of it."))
    open311_request_type: Literal["realtime", "batch"] = Field("realtime", description=(
        "realtime: a POST answers with service_request_id once the case is readable (a token "
        "if the read model is slower than read_wait_timeout_s); batch: always a token."))
    open311_retry_window_s: int = Field(600, ge=1, description=(
        "The same POST from one api_key (without an Idempotency-Key) within this window opens "
        "one case; the server forgets the form when the window is over."))
    open311_contact: str = "The community affairs service center's front desk."
    open311_key_service: str = "Ask the center for a counter-app api_key."

    host: str = "127.0.0.1"
    intake_port: int = 8001
    followup_port: int = 8002
    feedback_port: int = 8003

    group_commit_max_batch: int = Field(256, ge=1)
    group_commit_max_wait_ms: float | None = Field(None, ge=0, description=(
        "The longest group commit waits for a burst still arriving (fewer commands queued "
        "than its last batch held) before saving a batch; otherwise a batch is what is "
        "queued when the writer is free, and a lone write never waits. Unset: 2 ms "
        "(independent HTTP requests arrive a little apart), none in a workers-only process "
        "(ROLES=workers), whose commands come grouped already (a consumer's batch, a "
        "scheduler's tick) and would only wait: a survey's request waited there between "
        "feedback's intake follower and its store (benchmarks/README.md, end to end)."))
    write_timeout_s: float = Field(5.0, ge=0.5, le=120, description=(
        "Every write answers within this many seconds of its arrival. A write the store has "
        "not committed by then answers 503 store_unavailable (withdrawn before it was sent: "
        "nothing recorded) or 503 outcome_unknown (sent, commit not confirmed: retry with the "
        "same Idempotency-Key). Keep it well under clients' own timeouts."))
    relay_batch: int = Field(1000, ge=1)
    relay_atomic_rounds: bool | None = Field(None, description=(
        "Publish each relay round as one JetStream atomic batch (stored whole, in order, or "
        "not at all: no election in the middle of a round can put a service's events out of "
        "order). Costs the server ~2 ms of CPU and the round ~5 ms (nats-server 2.15). Unset: "
        "on when the stream is replicated (STREAM_REPLICAS > 1, where leaders change), off on "
        "one node (the disorder is then detected: shared/eventstore/outbox.py)."))
    consumer_batch: int = Field(500, ge=1)
    consumer_gather_ms: float = Field(0.0, ge=0, le=1000, description=(
        "How long a busy consumer waits for more events before applying a small batch "
        "(fewer than CONSUMER_GATHER_BELOW): each batch pays a fixed cost (its transaction, "
        "tracking, ack, span), so at middle rates fewer, larger batches cost less CPU an "
        "event. Busy: its last batch ended within CONSUMER_GATHER_WINDOW_MS; an idle "
        "consumer applies a lone event at once. 0: never waits."))
    consumer_gather_below: int = Field(8, ge=1, description=(
        "A batch of fewer events than this waits CONSUMER_GATHER_MS for more when the "
        "consumer is busy; one of this many or more is applied at once."))
    consumer_gather_window_ms: float = Field(20.0, ge=0, description=(
        "A consumer whose last batch ended less than this before its next event came is "
        "busy (CONSUMER_GATHER_MS)."))
    consumer_max_deliver: int = Field(5, ge=1)
    consumer_backoff_s: tuple[float, ...] = (0.2, 1.0, 5.0, 15.0)
    consumer_isolate_after_timeouts: int = Field(3, ge=1, description=(
        "After this many batches in a row ran out of time (DB_STATEMENT_TIMEOUT_S), a "
        "consumer applies the next one event at a time: an event that runs out of time on "
        "its own while others are applied is dead-lettered (replay it once its lock or slow "
        "statement is fixed) and the rest of the log goes on; one with nothing else to apply "
        "(the last on the stream) counts a try a pass, dead-lettered at CONSUMER_MAX_DELIVER."))
    read_wait_timeout_s: float = Field(5.0, ge=0)
    ready_max_lag: int = Field(10_000, ge=0, description="/ready fails above this consumer lag.")
    relay_stall_s: float = Field(30.0, gt=0, description=(
        "/ready answers degraded when the oldest stored event the relay has not published "
        "has waited longer than this (the stream has no leader, NATS is gone)."))
    consumer_lag_degraded_s: float = Field(60.0, gt=0, description=(
        "/ready answers degraded when a consumer's oldest unapplied event has been on the "
        "stream longer than this (a held batch, a slow or stopped consumer)."))
    health_probe_interval_s: float = Field(2.0, gt=0, description=(
        "How often a worker measures its relay's backlog and its consumers' oldest "
        "unapplied event (for /ready and /metrics)."))
    consumer_ack_wait_s: float = Field(30.0, gt=0, description=(
        "How long a fetched event may stay unacknowledged before the server hands it out "
        "again. A consumer resets its durable to the ack floor when it starts, so a "
        "crashed predecessor's batch comes back at once, in order, whatever this is."))
    db_statement_timeout_s: float = Field(30.0, ge=0, description=(
        "The longest one statement of a service's asyncpg pool (read models, consumers, "
        "relay, schedulers, reads) and of the event store's writes may run: PostgreSQL's "
        "statement_timeout (a lock wait ends just before it, lock_timeout), and the "
        "client's own timeout 5 s later (a backend that hangs without answering). A "
        "consumer whose batch times out hands it back and tries again with back-off "
        "(CONSUMER_ISOLATE_AFTER_TIMEOUTS); /ready says degraded. A request answers 503 "
        "statement_timed_out. 0: no limit."))
    db_idle_in_transaction_timeout_s: float = Field(60.0, ge=0, description=(
        "PostgreSQL ends a session of the pool left idle inside a transaction this long "
        "(idle_in_transaction_session_timeout): its locks go with it. 0: no limit."))
    ops_token: SecretStr | None = Field(None, description=(
        "Bearer token for the /ops routes (dead-letter replay). Unset: /ops answers only "
        "requests from the loopback interface (kubectl port-forward, docker exec)."))

    # -- follow-up (step 5): office hours, holidays beyond the package, rule timings --------
    office_open: time = Field(time(9, 0), description="Counter opens (center's wall clock).")
    office_close: time = Field(time(17, 0), description="Counter closes (center's wall clock).")
    office_lunch_start: time | None = None
    office_lunch_end: time | None = None
    center_office_hours: dict[str, str] = Field(default_factory=dict, description=(
        "Per-center hours as JSON, e.g. {\"SH-PD-HUAMU\": \"08:30-12:00,13:30-17:30\"}."))
    holidays_file: Path | None = Field(None, description=(
        "JSON: year -> {source, holidays: [days or ranges off], workdays: [make-up days]} "
        "for official schedules the chinese-calendar package does not carry yet."))
    center_holidays_files: dict[str, Path] = Field(
        default_factory=dict, description="Per-center holidays files (JSON), over holidays_file.")
    calendar_provisional_years: int = Field(5, ge=0, le=20, description=(
        "Years after the last official schedule that are planned provisionally, from the "
        "statutory rules alone; a date beyond them is refused (422) or its rule parked."))
    calendar_warn_days: int = Field(60, ge=0, description=(
        "/ready and `sixstep calendar status` warn when the official schedules end within "
        "this many days."))
    followup_deadline_reminder_working_days: int = Field(3, ge=0)
    urgent_deadline_working_days: int = Field(2, ge=0, description=(
        "A deadline noted this many working days ahead or closer makes the case urgent: its "
        "follow-ups high priority, the case at the top of the worklists."))
    case_due_soon_working_days: int = Field(3, ge=0, description=(
        "An open case due within this many working days is 'due soon' on the worklists."))
    followup_post_resolution_working_days: int = Field(5, ge=0)
    followup_early_check_working_days: int = Field(1, ge=0)
    followup_obligation_grace_working_days: int = Field(3, ge=0)
    followup_escalate_after_working_days: int = Field(2, ge=1)
    followup_lapse_after_days: int = Field(14, ge=4, le=3660, description=(
        "A rule's follow-up whose working day ended more than this many days before the rule "
        "was applied (a follow-up service reading a long history from scratch, or back after "
        "a long outage) is recorded as lapsed (scheduled and cancelled at once, reason "
        "lapsed), not due on the next working morning. Over OCCURRED_AT_GRACE_S (checked at "
        "start), so no follow-up of a post within the grace lapses."))
    followup_attempt_min_gap_hours: float = Field(8.0, ge=0, le=72, description=(
        "Unanswered attempts to reach a resident count on distinct center days AND at least "
        "this many hours apart (a call at 23:59 and a redial at 00:01 are one attempt)."))
    followup_help_task_working_days: int = Field(3, ge=1, le=60, description=(
        "帮办: a help task's deadline when the escalation names none (working days)."))
    followup_referral_reply_working_days: int = Field(5, ge=1, le=60, description=(
        "派单: a referral's reply deadline when the referral names none (working days)."))
    followup_handed_back_days: int = Field(90, ge=1, le=3650, description=(
        "帮办: a help task handed back, or closed by its case's resolution, is on the worklist "
        "of the clerk who asked for it (while the case is open) for this many days after "
        "(days); then only on its case's page. Bounds what the asker's worklist reads."))
    followup_referral_link_days: int = Field(30, ge=1, le=365, description=(
        "A referral's reply link is valid at least this long after it is issued (days), "
        "also for a referral already overdue."))
    followup_referral_link_grace_days: int = Field(30, ge=0, le=365, description=(
        "A referral's reply link stays valid this long after the referral's reply deadline "
        "(days): a reply may be asked within 60 working days, some 90 calendar days."))
    followup_referral_link_max_days: int = Field(180, ge=1, le=730, description=(
        "A referral's reply link is never valid longer than this after it is issued (days): "
        "it is a bearer secret passed through other hands."))
    followup_policy_outreach_working_days: int = Field(2, ge=0)
    followup_team: str = Field("followup-desk", description="Team for follow-ups with no clerk.")
    followup_supervisor_team: str = Field("supervisor", description="Who gets escalations.")
    followup_scheduler_interval_s: float = Field(5.0, gt=0)
    followup_scheduler_batch: int = Field(1000, ge=1)
    followup_fanout_batch: int = Field(1000, ge=1)
    followup_fanout_stall_s: float = Field(300.0, gt=0, description=(
        "/ready answers degraded when a published policy change is not fanned out and its "
        "fan-out has not moved for longer than this (no process runs ROLES=fanout, or it "
        "is stuck)."))

    survey_token_secret: SecretStr = Field(
        SecretStr(DEV_SURVEY_TOKEN_SECRET), description=(
            "HMAC key of survey links; 32+ characters, and never the development default, "
            "outside development."))
    def command_digest_key(self) -> bytes:
        """The key of the commands' digests, drawn from ``SURVEY_TOKEN_SECRET`` (which
        production refuses to leave at its development value): docs/api.md, Idempotency."""
        return command_digest_key(self.survey_token_secret.get_secret_value())

    def open311_forms_key(self) -> bytes:
        """The key that recognises an Open311 form posted again without an Idempotency-Key
        (services/intake/open311/recent_forms.py), drawn from ``SURVEY_TOKEN_SECRET``."""
        return derived_key(self.survey_token_secret.get_secret_value(), OPEN311_FORMS_CONTEXT)

    survey_link_base: str = Field(
        "http://127.0.0.1:8003/s",
        description="Survey page; the link is <base>/<survey_id>?t=<token>.")
    followup_url: str | None = Field(None, description=(
        "Where the supervisor's board (served by feedback) reads the follow-up worklist; "
        "default http://<host>:<followup_port>."))
    survey_delay_minutes: float = Field(
        120.0, ge=0, description="SMS and phone callback wait this long after the resolution; "
                                 "the counter tablet asks at once.")
    survey_answer_days: int = Field(7, ge=1, description="Days a sent survey waits for an answer.")
    survey_quiet_from: time = Field(time(21, 0), description=(
        "No SMS or phone callback is due from this hour (the center's wall clock) ..."))
    survey_quiet_until: time = Field(time(8, 0), description=(
        "... until this one: one whose delay ends in between is due at its end (a case "
        "resolved at 23:30 is texted at 08:00, not at 01:30). Equal values: no quiet hours."))
    survey_channels: dict[str, str] = Field(
        default_factory=lambda: {"counter": "tablet", "phone": "phone_callback",
                                 "home_visit": "sms", "open311": "sms"},
        description="Survey channel per intake channel (the resident's preferred way back).")
    # A bad review the 好差评 way (issue 18): each triage track's limit in working days, the
    # track a rectification's deadline follows until a supervisor triages it, how soon the
    # verification contact is due, and how the revisit asks.
    rectification_immediate_working_days: int = Field(1, ge=0, description=(
        "立行立改: working days after the triage day."))
    rectification_limited_working_days: int = Field(5, ge=0, description=(
        "限期整改: working days after the triage day."))
    rectification_explain_working_days: int = Field(15, ge=0, description=(
        "解释说明: working days after the triage day."))
    rectification_appeal_working_days: int = Field(5, ge=0, le=60, description=(
        "申诉时限: the reviewed clerk (or a supervisor for them) appeals a bad review until "
        "the end of this many working days after the review's day (a review on a day off "
        "counts from the next working day; judged on the service's day, or on the latest "
        "day it recorded anything of the review or at its center when later: a clock set "
        "back reopens nothing); later, 409 appeal_window_closed. An appeal "
        "lodged in time is decided whenever, after the window too."))
    clock_ahead_until: date | None = Field(None, description=(
        "Only after feedback's clock ran ahead and was put right: the last center day it "
        "recorded while ahead. The appeal window, a triage's missed deadline and an "
        "outcome's day are then judged on the clock, not on a recorded day up to this one "
        "(the center's last closed survey, the review's own events), which the center had "
        "not reached; a "
        "recorded day after it still counts (a clock set back reopens nothing). Unset "
        "again once the center's day has passed it (said in the calendar's warnings while "
        "set); a day past the working-day calendar is refused at start."))
    rectification_default_track: Literal["immediate", "limited", "explain"] = Field(
        "limited", description=(
            "The track whose limit a bad review's deadline follows until it is triaged "
            "(counted from the day of the review)."))
    followup_verification_working_days: int = Field(1, ge=0, description=(
        "回访核实: the verification contact after a bad review is due at office opening this "
        "many working days after the day of the review (1: the next working morning)."))
    revisit_channel: Literal["phone_callback", "sms"] = Field("phone_callback", description=(
        "How a rectification's revisit asks the resident; an unanswered revisit of a named "
        "resident is asked again by phone until answered."))
    survey_reason_tags: list[str] = Field(
        default_factory=lambda: list(DEFAULT_REASON_TAGS),
        min_length=1, description=(
            "The reasons a survey offers on a bad review (不满意 / 非常不满意), as a JSON list; "
            "each 1-32 characters, no spaces at the ends. A picked reason is kept with the "
            "rating and the rectification."))
    center_windows: dict[str, dict[str, str]] = Field(
        default_factory=lambda: {"*": {f"window-{n}": f"{n}号窗口" for n in range(1, 9)}},
        description=(
            "Each center's windows as JSON, center -> {window id: name shown}; '*' for the "
            "centers not named. The clerk's screen offers these at sign-in."))
    emotion_defusing_arrivals: Annotated[tuple[str, ...], NoDecode] = Field(
        ("upset", "angry", "distressed"), description=(
            "The emotions on arrival the emotion-defused rate counts, comma-separated: of calm, "
            "anxious, upset, angry, distressed (default upset,angry,distressed)."))
    period_close_after_days: int = Field(5, ge=0, le=366, description=(
        "A month's figures are closed (reported) this many days after it ends, unless a "
        "supervisor closed it before; 0 closes on the first day of the next month."))
    period_revise_every_minutes: int = Field(60, ge=0, le=1440, description=(
        "A closed month revised (late events changed its figures) is revised again at most "
        "this often: everything noted meanwhile goes into one revision; 0 revises at each "
        "of the scheduler's minutes."))
    public_figures_rate_per_minute: int = Field(60, ge=1, description=(
        "Requests a minute one address may make to the public figures page (公示)."))
    staff_names: dict[str, str] = Field(default_factory=dict, description=(
        "The staff directory as JSON, clerk id (工号) -> the name residents see: on the rating "
        "pad at the window and on the one-time notice. A clerk not named shows the 工号 only."))
    center_names: dict[str, str] = Field(default_factory=dict, description=(
        "Each center's name as printed for residents (the one-time notice), center -> name; "
        "'*' for the centers not named; default the center's code."))
    center_phones: dict[str, str] = Field(default_factory=dict, description=(
        "Each center's public phone, printed on the one-time notice, center -> number; '*' "
        "for the centers not named."))
    feedback_url: str | None = Field(None, description=(
        "Where the clerk's screen (served by intake) reads the survey link it shows as a QR "
        "code; default http://<host>:<feedback_port>."))
    feedback_tick_s: float = Field(0.25, gt=0, description=(
        "How often due surveys are sent/expired while there is work. Short ticks send in "
        "small batches: a tick's whole batch shares the writer with the surveys being "
        "requested. Idle, the scheduler waits for the next survey due (at most 60 s), woken "
        "by a survey requested: at once when idle, never sooner than this after its last "
        "tick."))

    consumer_partitions: str = Field(
        "", description="Partitions this replica's consumers own, e.g. '0-7' or '0,2,4'; empty "
                        "owns all. Replicas with disjoint sets share the work, each event once.")
    consumers: Annotated[set[str], NoDecode] = Field(default_factory=set, description=(
        "Which of the service's consumers this worker runs, by name, e.g. 'feedback-figures' "
        "(empty: all). Workers with disjoint sets share a service's consumers, each on its "
        "own event loop; the relay and the schedulers go to whichever worker leads them."))
    roles: Annotated[set[str], NoDecode] = Field(
        default_factory=lambda: set(ROLES),
        description="What this process does: 'api' (HTTP writes and reads), 'workers' (outbox "
                    "relay, consumers, schedulers), 'fanout' (follow-up's policy fan-out: "
                    "its bursts of writes then share no event loop with the relay and the "
                    "consumers). Split them to scale each on its own.")

    # -- who may call, and the resident vault (shared/security/, services/intake/vault.py) ------
    environment: Literal["development", "production"] = Field("development", description=(
        "development accepts the built-in development keys (with a warning); production "
        "refuses to start with them."))
    auth_keys: list[SecretStr] = Field(
        default_factory=lambda: [SecretStr(DEV_AUTH_KEY)], description=(
            "Token signing keys (HS256, 32+ characters each) as a JSON list: the first signs, "
            "every one verifies. Rotate by putting a new key first; drop the old one once its "
            "tokens have expired."))
    auth_issuer: str = Field("sixstep", description="The tokens' issuer (iss).")
    auth_token_minutes: int = Field(480, ge=1, le=60 * 24 * 366,
                                    description="Default lifetime of an issued token.")
    revocations_read_timeout_s: float = Field(30.0, gt=0, le=3600, description=(
        "How long a service's start may wait to read the bus's bucket of signed-out tokens "
        "(shared.bus.revocations); a bucket not read by then ends the start with an error "
        "(auth.revocations_unread), rather than serving signed-out tokens or waiting for "
        "ever."))
    # -- staff sign-in through the center's identity provider (shared/security/oidc.py) -------
    oidc_issuer: str | None = Field(None, description=(
        "The identity provider's issuer URL (OpenID Connect), e.g. "
        "https://sso.example.gov.cn/realms/pudong. Set: the pages sign staff in there "
        "(authorization code with PKCE) and the services take its RS256/ES256 tokens, "
        "verified against its JWKS. https unless the host is the loopback."))
    oidc_client_id: str | None = Field(None, description=(
        "The pages' client id at the issuer (a public client: no secret)."))
    oidc_audience: str | None = Field(None, description=(
        "What the tokens' aud must hold; default OIDC_CLIENT_ID."))
    oidc_scope: str = Field("openid profile", description=(
        "Scopes the pages ask for (offline_access too where the issuer wants it for a "
        "refresh token)."))
    oidc_role_claim: str = Field("roles", description=(
        "The claim that carries the role: a name or a dotted path (realm_access.roles); a "
        "string or a list of strings."))
    oidc_center_claim: str = Field("center", description=(
        "The claim that carries the center's code (a string, or a list of one)."))
    oidc_subject_claim: str = Field("sub", description=(
        "The claim that names the staff member, recorded as the actor of every event they "
        "record: a name or a dotted path to an opaque id (Keycloak's sub, a staff number). A "
        "token whose value holds a phone number, an ID number or an e-mail address is refused "
        "(403 claim_personal): map a claim that does not."))
    oidc_roles: dict[str, str] = Field(default_factory=dict, description=(
        "The issuer's role values -> sixstep roles as JSON, strongest first, e.g. "
        "{\"sixstep-supervisor\": \"supervisor\", \"sixstep-clerk\": \"clerk\"}. Empty: "
        "the claim holds sixstep's own role names."))
    oidc_algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256"], description=(
        "Signature algorithms taken from the issuer (RS256, ES256)."))
    oidc_jwks_refresh_s: float = Field(300.0, gt=0, description=(
        "How often the issuer's keys (JWKS) are fetched again, in the background."))
    oidc_jwks_max_age_s: float = Field(3600.0, gt=0, description=(
        "How long keys fetched once keep verifying while the JWKS cannot be reached; then "
        "every issuer token is a 503 auth_unavailable until it answers again."))
    oidc_jwks_min_refetch_s: float = Field(30.0, ge=0, description=(
        "A token naming a key (kid) not in the JWKS fetches it again at most this often."))
    oidc_timeout_s: float = Field(3.0, gt=0, description=(
        "How long a fetch of the issuer's discovery document or JWKS may take."))

    vault_master_key: SecretStr = Field(SecretStr(DEV_VAULT_MASTER_KEY), description=(
        "Wraps every resident's data key (AES-256-GCM, derived with HKDF); 32+ characters."))
    vault_old_master_keys: list[SecretStr] = Field(default_factory=list, description=(
        "Earlier master keys, still unwrapping data keys wrapped before a rotation."))
    vault_lookup_key: SecretStr = Field(SecretStr(DEV_VAULT_LOOKUP_KEY), description=(
        "HMAC key of the ID-number lookup hash (never rotated without re-registering)."))
    vault_key_buckets: int = Field(4096, ge=1, le=65536, description=(
        "How many bucket secrets the vault's keys hang from, fixed when the vault is created. "
        "Erasing a resident re-wraps the keys of the others in their bucket (about "
        "residents / buckets of them) and rewrites the key table (one row per bucket)."))
    presence_grant_minutes: float = Field(30.0, gt=0, le=24 * 60, description=(
        "How long a lookup by the full ID number lets that clerk reach a resident of another "
        "center (read, open a case, change details; erase with a supervisor's token)."))
    lookup_rate_per_minute: float = Field(20.0, gt=0, description=(
        "Lookups and registrations by ID number per clerk per minute (a token bucket; 429)."))
    lookup_burst: int = Field(10, ge=1, description="Lookups a clerk may send at once.")
    lookup_center_rate_per_minute: float = Field(200.0, gt=0, description=(
        "Lookups and registrations by ID number per center per minute (all its clerks)."))
    lookup_center_burst: int = Field(60, ge=1, description="Lookups a center may send at once.")
    lookup_miss_alert: int = Field(10, ge=1, description=(
        "This many lookups by one clerk that find no one within LOOKUP_MISS_WINDOW_MINUTES "
        "raise an audit entry the city sees and a metric."))
    lookup_miss_window_minutes: float = Field(10.0, gt=0)
    intake_url: str | None = Field(None, description=(
        "Where follow-up and feedback send free text about a case for intake to scrub of the "
        "case's resident (shared.http.case_texts); default http://<host>:<intake_port>."))
    intake_public_url: str | None = Field(None, description=(
        "Where residents' apps reach intake from outside (Open311 discovery names it); "
        "default http://<host>:<intake_port>. Never taken from a request's headers."))
    max_body_bytes: int = Field(256 * 1024, ge=1024, description=(
        "Larger request bodies are refused with 413."))
    survey_rate_per_minute: float = Field(6.0, gt=0, description=(
        "Survey answers per survey per minute (a token bucket; 429 beyond it)."))
    survey_rate_burst: int = Field(5, ge=1, description="Answers one survey may take at once.")

    # -- what the APIs accept as a moment or a day (shared/kernel/moments.py) ----------------------
    occurred_at_earliest: date = Field(date(2000, 1, 1), description=(
        "The earliest occurred_at (and deadline, due day ...) a request may give; not before "
        "1970-01-01, the contracts' own floor."))
    occurred_at_max_future_s: float = Field(300.0, ge=0, le=86_400, description=(
        "How far ahead of the service's clock occurred_at may be (counters' clocks drift)."))
    occurred_at_grace_s: float = Field(259_200.0, ge=0, le=2_592_000, description=(
        "How long before the service's clock occurred_at still counts as given for a deadline "
        "(on-time resolution, rectification): the counter page's offline queue over a "
        "weekend (72 h). A post older than that is recorded as given but judged on the "
        "service's clock less this grace (shared/kernel/moments.py)."))
    dates_horizon_days: int = Field(3660, ge=1, le=36_500, description=(
        "How far ahead a deadline, due day or effective day may be."))

    log_level: str = "INFO"
    log_json: bool = True

    # -- traces (shared/runtime/tracing.py) ------------------------------------------------------
    otel_exporter_otlp_endpoint: str | None = Field(None, description=(
        "An OTLP/HTTP collector (e.g. http://127.0.0.1:4318): each service sends its spans "
        "to <endpoint>/v1/traces. Unset: nothing is traced or sent."))
    otel_traces_sampler_arg: float = Field(1.0, ge=0.0, le=1.0, description=(
        "The share of new traces kept (a caller's sampled traceparent is always followed)."))

    @field_validator("emotion_defusing_arrivals", mode="before")
    @classmethod
    def _split_arrivals(cls, value: object) -> object:
        if isinstance(value, str):
            value = tuple(e.strip() for e in value.split(",") if e.strip())
        known = ("calm", "anxious", "upset", "angry", "distressed")
        if isinstance(value, set | list | tuple):
            if not value or not set(value) <= set(known):
                raise ValueError(f"EMOTION_DEFUSING_ARRIVALS takes some of {', '.join(known)}")
            value = tuple(e for e in known if e in set(value))
        return value

    @field_validator("consumers", mode="before")
    @classmethod
    def _split_consumers(cls, value: object) -> object:
        if isinstance(value, str):
            value = {c.strip() for c in value.split(",") if c.strip()}
        return value

    def group_commit_wait_ms(self) -> float:
        """``group_commit_max_wait_ms``, or its default for this process's roles."""
        if self.group_commit_max_wait_ms is not None:
            return self.group_commit_max_wait_ms
        return 0.0 if self.roles == {"workers"} else 2.0

    @field_validator("roles", mode="before")
    @classmethod
    def _split_roles(cls, value: object) -> object:
        if isinstance(value, str):
            value = {r.strip() for r in value.split(",") if r.strip()}
        if isinstance(value, set | list | tuple) and not set(value) <= set(ROLES):
            raise ValueError(f"roles are some of {', '.join(ROLES)}, e.g. ROLES=api,workers")
        return value

    @model_validator(mode="after")
    def _partitions_in_range(self) -> Settings:
        parse_partitions(self.consumer_partitions, self.partitions)
        return self

    def owned_partitions(self) -> list[int] | None:
        """The partitions this replica consumes, or None for all of them."""
        if not self.consumer_partitions.strip():
            return None
        owned = parse_partitions(self.consumer_partitions, self.partitions)
        return owned

    def development_defaults(self) -> list[str]:
        """The settings (as environment variables) still holding a development secret or a
        shipped ``CHANGE-ME`` placeholder."""
        held: list[str] = []
        for name in PLACEHOLDER_SETTINGS:
            value = getattr(self, name)
            values = [_plain(v) for v in (value if isinstance(value, list) else [value])
                      if v is not None]
            if (DEVELOPMENT_DEFAULTS.get(name) in values
                    or any(SHIPPED_PLACEHOLDER in v.lower() for v in values)):
                held.append(name.upper())
        return held

    def nats_credentials(self) -> dict[str, str]:
        """What nats-py's ``connect`` takes to sign in as this process's user (none: the
        user of NATS_URL, if any, or anonymous)."""
        if self.nats_creds_file is not None:
            return {"user_credentials": str(self.nats_creds_file)}
        if self.nats_user:
            password = self.nats_password.get_secret_value() if self.nats_password else ""
            return {"user": self.nats_user, "password": password}
        return {}

    def signs_in_to_nats(self) -> bool:
        """Whether this process gives NATS credentials: settings, or a user in every URL."""
        return bool(self.nats_credentials()) or all(
            urlsplit(u.strip()).username for u in self.nats_url.split(",") if u.strip())

    def refuse_anonymous_nats(self) -> None:
        """Outside development, NATS credentials (or NATS_SECURED_OTHERWISE): checked when the
        settings are built and when a service is put together, as the development keys are."""
        if (self.environment != "development" and not self.nats_secured_otherwise
                and not self.signs_in_to_nats()):
            raise NatsCredentialsMissing()

    def refuse_development_defaults(self) -> None:
        """Outside development, no development secret: ``DevelopmentDefaults`` names each.

        Checked when the settings are built and again when a service is put together
        (``shared.http.app.install_surface``), since ``model_copy`` skips validation."""
        if self.environment != "development" and (held := self.development_defaults()):
            raise DevelopmentDefaults(held)

    @model_validator(mode="after")
    def _writes_answer_before_sessions_end(self) -> Settings:
        """A consumer's transaction waits, idle, for its commands' group commit (up to
        ``WRITE_TIMEOUT_S``): PostgreSQL ending the session first (its
        ``idle_in_transaction_session_timeout``) surfaces as a closed connection, not as a
        timeout the consumer hands back and retries
        (``shared.bus.store_timeouts.STORE_TIMED_OUT``)."""
        idle = self.db_idle_in_transaction_timeout_s
        if idle > 0 and self.write_timeout_s >= idle:
            raise ValueError(
                f"WRITE_TIMEOUT_S ({self.write_timeout_s:g}) must be under "
                f"DB_IDLE_IN_TRANSACTION_TIMEOUT_S ({idle:g}): a consumer waits for its writes "
                "inside a transaction, which PostgreSQL would end first")
        return self

    @model_validator(mode="after")
    def _referral_links_at_least_within_at_most(self) -> Settings:
        """A reply link lives at least ``FOLLOWUP_REFERRAL_LINK_DAYS`` and at most
        ``FOLLOWUP_REFERRAL_LINK_MAX_DAYS`` (``referral_tokens.link_expires_at``): the least
        over the most was cut to the most without a word, every link shorter than set."""
        if self.followup_referral_link_days > self.followup_referral_link_max_days:
            raise ValueError(
                f"FOLLOWUP_REFERRAL_LINK_DAYS ({self.followup_referral_link_days}) must not be "
                f"over FOLLOWUP_REFERRAL_LINK_MAX_DAYS ({self.followup_referral_link_max_days})"
                ": a reply link lives at least the one and at most the other")
        return self

    @model_validator(mode="after")
    def _nothing_within_the_grace_lapses(self) -> Settings:
        """A rule's follow-up is planned from its post's moment as judged (at most
        ``OCCURRED_AT_GRACE_S`` back): a lapse window not over the grace (a center whose
        counters are offline for weeks given 20 days, lapse left at 14) lapsed the reminder
        of a deadline posted within the grace, a fresh need nobody saw."""
        if self.followup_lapse_after_days * 86_400 <= self.occurred_at_grace_s:
            raise ValueError(
                f"FOLLOWUP_LAPSE_AFTER_DAYS ({self.followup_lapse_after_days}) must be over "
                f"OCCURRED_AT_GRACE_S ({self.occurred_at_grace_s:g} s): a follow-up of a post "
                "within the grace would lapse the moment it is planned")
        return self

    @model_validator(mode="after")
    def _no_development_secrets(self) -> Settings:
        """Like the FastAPI full-stack template: default secrets only in development."""
        if not self.auth_keys:
            raise ValueError("AUTH_KEYS needs at least one key")
        keys = [k.get_secret_value() for k in self.auth_keys]
        vault = [self.vault_master_key.get_secret_value(),
                 *(k.get_secret_value() for k in self.vault_old_master_keys)]
        self.refuse_development_defaults()
        self.refuse_anonymous_nats()
        if any(len(k) < 32 for k in [*keys, *vault]):
            raise ValueError("AUTH_KEYS and vault master keys need 32+ characters each")
        if len(self.vault_lookup_key.get_secret_value()) < 32:
            raise ValueError("VAULT_LOOKUP_KEY needs 32+ characters")
        if (self.environment != "development"
                and len(self.survey_token_secret.get_secret_value()) < 32):
            raise ValueError("SURVEY_TOKEN_SECRET needs 32+ characters outside development")
        ops_token = self.ops_token.get_secret_value() if self.ops_token else ""
        if self.environment != "development" and 0 < len(ops_token) < 32:
            raise ValueError("OPS_TOKEN needs 32+ characters outside development (or leave it "
                             "unset: the /ops routes then answer only on the loopback)")
        return self

    @model_validator(mode="after")
    def _a_user_has_a_password(self) -> Settings:
        if self.nats_password is not None and not self.nats_user:
            raise ValueError("NATS_PASSWORD needs NATS_USER (the user it is the password of)")
        if self.nats_user and self.nats_password is None and self.nats_creds_file is None:
            raise ValueError("NATS_USER needs NATS_PASSWORD")
        return self

    @field_validator("oidc_issuer", "oidc_client_id", "oidc_audience", "nats_user",
                     "nats_password", "nats_creds_file", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """``OIDC_ISSUER=`` (a compose file's empty default) means no identity provider (and
        ``NATS_USER=`` no NATS user)."""
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _usable_issuer(self) -> Settings:
        if self.oidc_issuer is None:
            return self
        issuer = urlsplit(self.oidc_issuer)
        loopback = issuer.hostname in ("localhost", "127.0.0.1", "::1")
        if issuer.scheme != "https" and not (issuer.scheme == "http" and loopback):
            raise ValueError("OIDC_ISSUER must be an https URL (http only on the loopback)")
        if issuer.query or issuer.fragment:
            raise ValueError("OIDC_ISSUER has no query or fragment")
        if not self.oidc_client_id:
            raise ValueError("OIDC_ISSUER needs OIDC_CLIENT_ID (the pages' client id)")
        if not self.oidc_algorithms or not set(self.oidc_algorithms) <= set(OIDC_ALGORITHMS):
            raise ValueError(f"OIDC_ALGORITHMS are some of {', '.join(OIDC_ALGORITHMS)}")
        if not self.oidc_role_claim.strip() or not self.oidc_center_claim.strip() \
                or not self.oidc_subject_claim.strip():
            raise ValueError("OIDC_ROLE_CLAIM, OIDC_CENTER_CLAIM and OIDC_SUBJECT_CLAIM name a "
                             "claim")
        staff_roles = {"clerk", "supervisor", "analyst", "ops", "city"}
        if bad := sorted(set(self.oidc_roles.values()) - staff_roles):
            raise ValueError(f"OIDC_ROLES maps to sixstep roles ({', '.join(sorted(staff_roles))})"
                             f", not {', '.join(bad)}")
        return self

    @field_validator("occurred_at_earliest")
    @classmethod
    def _not_before_the_contracts(cls, value: date) -> date:
        if value < EARLIEST_DAY:
            raise ValueError(f"OCCURRED_AT_EARLIEST cannot be before {EARLIEST_DAY}: events "
                             "before it could not be read back")
        return value

    @field_validator("survey_reason_tags")
    @classmethod
    def _usable_tags(cls, value: list[str]) -> list[str]:
        for tag in value:
            if not 1 <= len(tag) <= 32 or tag != tag.strip():
                raise ValueError("a survey reason tag is 1-32 characters, no spaces at the ends")
        if len(set(value)) != len(value):
            raise ValueError("SURVEY_REASON_TAGS names a reason twice")
        return value

    @field_validator("survey_quiet_from", "survey_quiet_until")
    @classmethod
    def _wall_clock(cls, value: time) -> time:
        if value.tzinfo is not None:
            raise ValueError("SURVEY_QUIET_FROM and SURVEY_QUIET_UNTIL are hours on the "
                             "center's wall clock (CENTER_TIMEZONE), written without an offset: "
                             "21:00, not 21:00+08:00")
        return value

    @field_validator("center_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        ZoneInfo(value)
        return value

    @field_validator("open311_api_keys")
    @classmethod
    def _usable_keys(cls, value: dict[str, str]) -> dict[str, str]:
        for key, center in value.items():
            if key.startswith("sha256:"):
                if not re.fullmatch(r"[0-9a-f]{64}", key.removeprefix("sha256:")):
                    raise ValueError("a hashed api_key is 'sha256:' and 64 lower-case hex digits")
            elif len(key) < 16:
                raise ValueError("an api_key needs at least 16 characters")
            if not re.fullmatch(CODE_PATTERN, center):
                raise ValueError(f"center_id {center!r} is not a valid code")
        return value

    @cached_property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.center_timezone)

    def schema_for(self, service: ServiceName) -> str:
        return f"{self.schema_prefix}{service}"

    def port_for(self, service: ServiceName) -> int:
        return {"intake": self.intake_port, "followup": self.followup_port,
                "feedback": self.feedback_port}[service]


def settings_problem(exc: Exception) -> str:
    """A refusal of the settings as an operator reads it: each setting at fault and why, in
    one line; never the values given (pydantic's own text quotes them: a key, a password)."""
    errors = exc.errors() if hasattr(exc, "errors") else []  # pydantic's ValidationError
    return "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ())).upper() or 'settings'}: "
        f"{str(e.get('msg', '')).removeprefix('Value error, ')}" for e in errors) or str(exc)
