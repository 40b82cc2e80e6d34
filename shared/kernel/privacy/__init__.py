"""Personal data out of free text: ``redact(text, known)`` (``redaction``), the rules it applies
(``patterns``, every rule at once, over ``numbers``, ``addresses`` and ``names``, a text read as
``folding`` reads it, each find replaced by one of ``markers``) and the resident a text is about
(``known_person``)."""

from shared.kernel.privacy.known_person import KnownPerson
from shared.kernel.privacy.markers import (
    REDACTED_ACCOUNT,
    REDACTED_ADDRESS,
    REDACTED_EMAIL,
    REDACTED_ID,
    REDACTED_NAME,
    REDACTED_PHONE,
    REDACTED_PLATE,
    REDACTED_RECORD,
)
from shared.kernel.privacy.redaction import redact

__all__ = ["REDACTED_ACCOUNT", "REDACTED_ADDRESS", "REDACTED_EMAIL", "REDACTED_ID",
           "REDACTED_NAME", "REDACTED_PHONE", "REDACTED_PLATE", "REDACTED_RECORD", "KnownPerson",
           "redact"]
