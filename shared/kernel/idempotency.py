"""Idempotency inside an aggregate: a command's key, once applied, answers every retry.

Each event a command records carries the command's key (an Idempotency-Key, or the id of the
upstream event a consumer acts on) as its ``causation_id``. The aggregate remembers, per key,
what the command was, who sent it, its keyed digest (``meta[COMMAND_DIGEST]``) and the version
it left the aggregate at, so the same command again under the same key returns the first
answer (``AlreadyDoneError``), and the key sent again with another command (another kind,
another caller, or the same kind with other content) is refused (``IdempotencyKeyReused``,
422). The memory is rebuilt with the aggregate from its events; a command recorded before
digests were kept has none and is replayed as before.
"""

from __future__ import annotations

from typing import Any, ClassVar

from shared.kernel.errors import AlreadyDoneError, IdempotencyKeyReused
from shared.kernel.meta import COMMAND_DIGEST, Meta
from shared.kernel.scrubbing import ScrubsFreeText


class RemembersCommands(ScrubsFreeText):
    """Mixed into each service's aggregates; ``where`` words the 409's message. Being a
    :class:`~shared.kernel.scrubbing.ScrubsFreeText`, every event they record is scrubbed of
    personal data before it is built."""

    where: ClassVar[str] = "here"

    def answered(self, key: str) -> bool:
        """Whether a command under ``key`` was applied here (a retry of it replays)."""
        return key in self.__dict__.get("commands", {})

    def meta_for(self, meta: Meta) -> Meta:
        """``meta`` placed on this aggregate: its center and its case (None when it has none)."""
        return {**meta, "center_id": getattr(self, "center_id", None),
                "case_id": getattr(self, "case_id", None)}

    def _remember(self, meta: dict[str, Any], kind: str, created: bool = False) -> None:
        """Called inside an event's apply, where ``self.version`` is still the previous one
        (``created``: the event that creates the aggregate, version 1).

        A command that records several events is remembered by its first event's kind (what
        the caller checks) and its last event's version (what the caller was answered).
        """
        commands: dict[str, tuple[str, int]] = self.__dict__.setdefault("commands", {})
        key = meta.get("causation_id")
        if key:
            first = commands.get(key)
            commands[key] = (first[0] if first else kind, 1 if created else self.version + 1)
            if not first:
                self.__dict__.setdefault("key_actors", {})[key] = meta.get("actor")
                if digest := meta.get(COMMAND_DIGEST):
                    self.__dict__.setdefault("key_digests", {})[key] = digest

    def check_new_command(self, key: str | None, kind: str, actor: str | None = None,
                          digest: str | None = None) -> None:
        """A key already applied here returns the earlier answer instead of acting twice.

        Every command from a caller is checked here by ``shared.eventstore.command_path``
        before its If-Match, so a retry answers as the first attempt did. ``actor``: the
        caller, where the aggregate's id is made from the key alone (a case, a visit, a
        follow-up planned by hand): the same key from another caller is a 422, not that
        caller's aggregate answered as theirs (two counter apps counting keys from 1).
        ``digest``: the command's keyed digest (``meta[COMMAND_DIGEST]``): the same key with
        other content (a ``hear`` with other words) is a 422 too, not the first answer with
        the second command dropped; a key recorded without one (before digests were kept)
        answers as before."""
        commands: dict[str, tuple[str, int]] = self.__dict__.get("commands", {})
        if not key or key not in commands:
            return
        used_for, version = commands[key]
        if used_for != kind:
            raise IdempotencyKeyReused(
                f"Idempotency-Key {key!r} was already used for {used_for} {self.where}",
                key=key, used_for=used_for)
        first_actor = self.__dict__.get("key_actors", {}).get(key)
        if actor is not None and first_actor is not None and first_actor != actor:
            raise IdempotencyKeyReused(
                f"Idempotency-Key {key!r} was already used by another caller {self.where}",
                key=key, used_for=used_for)
        first_digest = self.__dict__.get("key_digests", {}).get(key)
        if digest is not None and first_digest is not None and first_digest != digest:
            raise IdempotencyKeyReused(
                f"Idempotency-Key {key!r} was already used for another {used_for} "
                f"{self.where}; send a new key for a new command", key=key, used_for=used_for)
        raise AlreadyDoneError(self.id, version)
