"""An event applied to its aggregate as eventsourcing applies it, its per-class lookups done once.

Every aggregate load (``repository.get``: group commit's writer loading what a command acts on,
a follower loading the case it follows) replays the aggregate's stored events through the
library's ``project_aggregate``, and every ``@event`` method's event, once built, is applied
through its ``mutate`` (eventsourcing 9.5.6, pinned). For each event the library's path

- asserts the event is an instance of a runtime-checkable ``Protocol`` (``CanMutateProtocol``):
  Python 3.11 walks the protocol's attributes for every check, about half of the ~240 us a
  case of 12 events took to load (benchmarks/README.md, issue 23 target 2);
- then, for an event of an ``@event`` method (a ``DecoratedFuncCaller``), looks the method up
  by the event's class, filters the event's attributes through the method's signature in a
  function call of its own, binds the method and calls it, then the no-op ``apply`` above it.

:func:`project` is ``project_aggregate`` without the check, and :func:`step_of` the step it
takes for each event class, worked out once: for the event of an ``@event`` method whose class
changes nothing of the library's (its ``mutate``, ``apply`` and ``_as_dict`` the library's, no
``apply`` of its own above ``DecoratedFuncCaller``, the method a plain function), the same
checks of id and version, the method called with the same filtered attributes, the same
version and ``modified_on`` set; for any other event class of the library's
``CanMutateAggregate`` (a created event, ``Resident.Fact``'s own ``mutate``), its own
``mutate``; for anything else (a snapshot), the library's check and ``mutate``. The check only
asks whether the event has an id, a version, a timestamp and a ``mutate``: a
``CanMutateAggregate`` always has the last, and the mapper always gives the first two; a stored
event without a timestamp (none is ever stored so) fails the load here too, with an
``AttributeError`` instead of an ``AssertionError``.

:func:`trigger` is ``BaseAggregate.trigger_event`` (every ``@event`` method's call ends there)
with the new event applied by its step instead of its ``mutate``: ~0.8 us of the ~2.6 the
library's apply of a follow-up's ``FollowUpCancelled`` costs.
``tests/unit/test_lean_applying.py`` replays generated histories of the services' aggregates
both ways and compares the aggregates, and records the same histories both ways and compares
the aggregates, their events and the stored bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import FunctionType
from typing import Any

from eventsourcing.domain import (
    CanMutateAggregate,
    CanMutateProtocol,
    DecoratedFuncCaller,
    OriginatorIDError,
    OriginatorVersionError,
    _spec_filter_kwargs_for_method_params,
    decorated_funcs,
)

Step = Callable[[Any, Any], Any]
"""Applies an event (first) to an aggregate (second, None for a created event) and returns
the aggregate, as the event's ``mutate`` does."""

_steps: dict[type, Step] = {}


def step_of(event_class: type) -> Step:
    """How an event of ``event_class`` is applied, worked out on its first use."""
    try:
        return _steps[event_class]
    except KeyError:
        made = _steps[event_class] = _made(event_class)
        return made


def project(aggregate: Any, events: Iterable[Any]) -> Any:
    """``eventsourcing.application.project_aggregate``, each event applied by its
    :func:`step_of`: a ``projector_func`` for ``Repository.get``."""
    steps = _steps
    for event in events:
        step = steps.get(type(event)) or step_of(type(event))
        aggregate = step(event, aggregate)
    return aggregate


def trigger(aggregate: Any, event_class: type, kwargs: dict[str, Any]) -> None:
    """``aggregate.trigger_event(event_class, **kwargs)`` as ``BaseAggregate.trigger_event``
    (eventsourcing 9.5.6, pinned) does it, for an aggregate without an explicit ``TOPIC``
    and without a mixin's ``trigger_event`` between the caller's and the library's (the caller,
    ``ScrubsFreeText``, sends those to the library): the next event built with the same
    arguments, applied by :func:`step_of`, appended to the pending events."""
    next_version = aggregate.version + 1
    kwargs = kwargs.copy()
    kwargs.update(originator_id=aggregate.id, originator_version=next_version)
    if kwargs.get("timestamp") is None:
        kwargs["timestamp"] = event_class.create_timestamp()  # type: ignore[attr-defined]
    try:
        new_event = event_class(**kwargs)
    except TypeError as e:
        msg = f"Can't construct event {event_class}: {e}"
        raise TypeError(msg) from None
    (_steps.get(event_class) or step_of(event_class))(new_event, aggregate)
    aggregate._pending_events.append(new_event)


def _made(event_class: type) -> Step:
    if not (isinstance(event_class, type) and issubclass(event_class, CanMutateAggregate)):
        return _checked
    func = decorated_funcs.get(event_class)
    if (isinstance(func, FunctionType)
            and issubclass(event_class, DecoratedFuncCaller)
            and event_class.mutate is CanMutateAggregate.mutate
            and event_class._as_dict is CanMutateAggregate._as_dict
            and event_class.apply is DecoratedFuncCaller.apply
            and _apply_after_caller(event_class) is CanMutateAggregate.apply):
        return _decorated(func)
    return _mutated


def _apply_after_caller(event_class: type) -> Any:
    """The ``apply`` that ``DecoratedFuncCaller.apply``'s ``super().apply`` calls."""
    mro = event_class.__mro__
    for klass in mro[mro.index(DecoratedFuncCaller) + 1:]:
        if "apply" in klass.__dict__:
            return klass.__dict__["apply"]
    return None


def _decorated(func: FunctionType) -> Step:
    names = _spec_filter_kwargs_for_method_params(func)

    def step(event: Any, aggregate: Any) -> Any:
        # CanMutateAggregate.mutate: this aggregate's next event, or refused.
        assert aggregate is not None
        if event.originator_id != aggregate.id:
            raise OriginatorIDError(event.originator_id, aggregate.id)
        next_version = aggregate.version + 1
        if event.originator_version != next_version:
            raise OriginatorVersionError(event.originator_version, next_version)
        # DecoratedFuncCaller.apply: the method with the event's attributes it names.
        func(aggregate, **{k: v for k, v in event.__dict__.items() if k in names})
        aggregate.version = event.originator_version
        aggregate.modified_on = event.timestamp
        return aggregate

    return step


def _mutated(event: Any, aggregate: Any) -> Any:
    return event.mutate(aggregate)


def _checked(event: Any, aggregate: Any) -> Any:
    assert isinstance(event, CanMutateProtocol)
    return event.mutate(aggregate)
