"""Event contracts: what crosses the bus, defined once for every service.

Importing this package registers every contract in :data:`REGISTRY`.
"""

from shared.contracts import feedback, followup, intake, periods, plans  # noqa: F401
from shared.contracts.envelope import Envelope, event_id_for
from shared.contracts.registry import REGISTRY, EventContract, UnknownEventType

__all__ = ["REGISTRY", "Envelope", "EventContract", "UnknownEventType", "event_id_for"]
