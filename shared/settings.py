"""One settings object per process, built at start-up from the environment (prefix-free names)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ServiceName = Literal["intake", "followup", "feedback"]


class Settings(BaseSettings):
    """Everything a sixstep process needs to know about where it runs.

    Nothing reads the environment at import time: call ``Settings()`` in a composition root.
    """

    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    database_url: str = Field(
        "postgresql://postgres@127.0.0.1:5432/postgres",
        description="PostgreSQL DSN; each service keeps its data in its own schema.",
    )
    nats_url: str = Field("nats://127.0.0.1:4222", description="NATS server(s), comma separated.")
    stream_name: str = Field("SIXSTEP", description="The one replayable JetStream stream.")
    subject_prefix: str = Field("sixstep", description="First token of every event subject.")
    stream_replicas: int = Field(1, ge=1, le=5)
    stream_max_age_days: int = Field(0, ge=0, description="0 keeps events forever.")
    stream_duplicate_window_s: int = Field(600, ge=1)
    partitions: int = Field(16, ge=1, le=1024, description="Case-id partitions on subjects.")
    schema_prefix: str = Field("", description="Prefix for service schemas (tests isolate runs).")

    center_timezone: str = "Asia/Shanghai"
    catalogue_paths: list[Path] = Field(
        default_factory=list, description="Extra catalogue files (JSON) merged over the shipped one.")

    host: str = "127.0.0.1"
    intake_port: int = 8001
    followup_port: int = 8002
    feedback_port: int = 8003

    group_commit_max_batch: int = Field(256, ge=1)
    group_commit_max_wait_ms: float = Field(2.0, ge=0)
    relay_batch: int = Field(1000, ge=1)
    consumer_batch: int = Field(500, ge=1)
    consumer_max_deliver: int = Field(5, ge=1)
    consumer_backoff_s: tuple[float, ...] = (0.2, 1.0, 5.0, 15.0)
    read_wait_timeout_s: float = Field(5.0, ge=0)
    ready_max_lag: int = Field(10_000, ge=0, description="/ready fails above this consumer lag.")

    log_level: str = "INFO"
    log_json: bool = True

    @field_validator("center_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        ZoneInfo(value)
        return value

    @cached_property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.center_timezone)

    def schema_for(self, service: ServiceName) -> str:
        return f"{self.schema_prefix}{service}"

    def port_for(self, service: ServiceName) -> int:
        return {"intake": self.intake_port, "followup": self.followup_port,
                "feedback": self.feedback_port}[service]
