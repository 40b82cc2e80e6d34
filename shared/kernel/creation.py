"""A new aggregate built as eventsourcing builds it, its per-class lookups done once.

Every write that opens something (a case at the counter, a visit, a follow-up, a survey) builds
its aggregate on group commit's writer thread through the library's ``BaseAggregate._create``
and ``CanInitAggregate.mutate`` (eventsourcing 9.5.6, pinned). Those are generic: for every
new aggregate they filter the arguments for an id factory the caller does not use, work out
the class's topic and resolve it back, and filter the event's attributes twice through a
signature lookup each, about a third of the ~20-30 us an ``OpenCase`` costs there
(benchmarks/README.md, issue 23 target 1). :func:`creator` does the same steps in the same
order with what only depends on the classes worked out once: the same event (its class called
with the same arguments, so the same frozen dataclass, ``__post_init__`` and attribute order,
hence the same stored bytes), the same shell, ``__base_init__``, ``__init__`` and ``apply``
calls with the same arguments. A class it cannot vouch for (an explicit ``TOPIC``, a
``mutate``, ``__new__`` or ``__base_init__`` of its own, a topic that resolves elsewhere) and an
id that is not a ``UUID`` get None: the library's ``_create`` builds them; so does a class with a
mixin's ``_create`` after ``ScrubsFreeText``'s (the caller, ``ScrubsFreeText._create``, checks).
``tests/unit/test_lean_creation.py`` builds every created event of the three services' aggregates
both ways and compares the aggregates, their events and the stored bytes.

:func:`recording` does the same for a later event of an ``@event`` method called with each of
its parameters named (``tests/unit/test_lean_recording.py``: a follow-up's cancel).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any
from uuid import UUID

from eventsourcing.domain import (
    BaseAggregate,
    CanInitAggregate,
    _init_mentions_id,
    _spec_filter_kwargs_for_method_params,
    decorated_func_callers,
)
from eventsourcing.utils import get_topic, resolve_topic

Creator = Callable[[UUID, dict[str, Any]], Any]
"""Builds the aggregate of id ``UUID`` from the created event's arguments (scrubbed), the
event appended to its pending events."""

_creators: dict[tuple[type, type], Creator | None] = {}


def creator(cls: type, event_class: type) -> Creator | None:
    """How a ``cls`` created by ``event_class`` is built, or None: the library builds it."""
    key = (cls, event_class)
    try:
        return _creators[key]
    except KeyError:
        made = _creators[key] = _made(cls, event_class)
        return made


def _made(cls: type, event_class: type) -> Creator | None:
    if getattr(cls, "TOPIC", None) or getattr(event_class, "TOPIC", None):
        return None  # the library checks the registration of an explicit topic
    if not (issubclass(cls, BaseAggregate) and issubclass(event_class, CanInitAggregate)):
        return None
    if (event_class.mutate is not CanInitAggregate.mutate
            or cls.__base_init__ is not BaseAggregate.__base_init__
            or cls.__new__ is not object.__new__):
        return None
    topic = get_topic(cls)
    if resolve_topic(topic) is not cls:
        return None  # a topic registered elsewhere: the event builds what it names
    init = cls.__init__
    names = _spec_filter_kwargs_for_method_params(init)
    mentions_id = cls in _init_mentions_id
    version = cls.INITIAL_VERSION
    create_timestamp = event_class.create_timestamp
    new = object.__new__

    def create(originator_id: UUID, kwargs: dict[str, Any]) -> Any:
        # BaseAggregate._create: the common "created" attributes, then the event.
        kwargs = kwargs.copy()
        kwargs.update(originator_topic=topic, originator_id=originator_id,
                      originator_version=version)
        if kwargs.get("timestamp") is None:
            kwargs["timestamp"] = create_timestamp()
        try:
            event = event_class(**kwargs)
        except TypeError as e:
            msg = f"Unable to construct '{event_class.__qualname__}' event: {e}"
            raise TypeError(msg) from e
        # CanInitAggregate.mutate: the shell, the base init, the init, the apply.
        agg = new(cls)
        state = event.__dict__
        agg.__base_init__(originator_id=state["originator_id"],
                          originator_version=state["originator_version"],
                          timestamp=state["timestamp"])
        init_kwargs = {k: v for k, v in state.items() if k in names}
        if mentions_id:
            init_kwargs["id"] = state["originator_id"]
        agg.__init__(**init_kwargs)
        event.apply(agg)
        agg.pending_events.append(event)
        return agg

    return create


def recording(cls: type, method: str) -> Callable[[Any, dict[str, Any]], None]:
    """How ``aggregate.<method>(**kwargs)`` of ``cls``'s ``@event`` method records its event,
    done as the library does it when ``kwargs`` names each of the method's parameters (all of
    them attributes of its event): ``aggregate.trigger_event`` of the method's event class with
    them, what the library's ``BoundCommandMethodDecorator`` comes to then, without its
    generic steps (a bound decorator made for the call, the arguments coerced to keywords and
    defaults added, both filtered by the event's signature): ~10 us of the ~28 a follow-up's
    ``FollowUpCancelled`` costs on the group commit's writer thread, where the rules cancel
    each lapsed follow-up they plan. Any other ``kwargs`` goes through the library's call
    (its defaults, its errors)."""
    decorator = cls.__dict__[method]
    event_class = decorated_func_callers[decorator]
    params = inspect.signature(decorator.decorated_func).parameters
    names = frozenset(name for name in params if name != "self")
    plain = (all(p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) for p in params.values())
             and names <= _spec_filter_kwargs_for_method_params(event_class))

    def record(aggregate: Any, kwargs: dict[str, Any]) -> None:
        if plain and kwargs.keys() == names:
            aggregate.trigger_event(event_class, **kwargs)
        else:
            getattr(aggregate, method)(**kwargs)

    return record
