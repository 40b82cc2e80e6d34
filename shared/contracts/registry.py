"""One definition per event type: its payload model, its current version and its upcasters."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from shared.contracts.envelope import Envelope

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


class UnknownEventType(LookupError):
    def __init__(self, type_name: str) -> None:
        super().__init__(f"unknown event type {type_name!r}: no contract is registered for it")
        self.type_name = type_name


class UnsupportedVersion(ValueError):
    def __init__(self, type_name: str, version: int, current: int) -> None:
        super().__init__(
            f"{type_name} v{version} cannot be read: current is v{current} and no upcaster "
            f"goes from v{version}"
        )


@dataclass(frozen=True)
class EventContract:
    """An event type as it crosses the bus.

    ``upcasters[n]`` turns a v``n`` payload into a v``n+1`` payload; old events are read
    through the chain, never rewritten.
    """

    type: str
    service: str
    payload: type[BaseModel]
    version: int = 1
    upcasters: dict[int, Upcaster] = field(default_factory=dict)
    summary: str = ""

    def upcast(self, payload: dict[str, Any], version: int) -> dict[str, Any]:
        if version > self.version:
            raise UnsupportedVersion(self.type, version, self.version)
        while version < self.version:
            step = self.upcasters.get(version)
            if step is None:
                raise UnsupportedVersion(self.type, version, self.version)
            payload = step(payload)
            version += 1
        return payload


class Registry:
    def __init__(self) -> None:
        self._contracts: dict[str, EventContract] = {}

    def add(self, contract: EventContract) -> EventContract:
        if contract.type in self._contracts:
            raise ValueError(f"event type {contract.type!r} is defined twice")
        self._contracts[contract.type] = contract
        return contract

    def get(self, type_name: str) -> EventContract:
        try:
            return self._contracts[type_name]
        except KeyError:
            raise UnknownEventType(type_name) from None

    def __iter__(self) -> Iterator[EventContract]:
        return iter(self._contracts.values())

    def __contains__(self, type_name: object) -> bool:
        return type_name in self._contracts

    def read(self, envelope: Envelope) -> BaseModel:
        """The payload as the current version's model, upcast when it was stored older."""
        contract = self.get(envelope.type)
        data = contract.upcast(dict(envelope.payload), envelope.version)
        return contract.payload.model_validate(data)

    def current(self, envelope: Envelope) -> Envelope:
        """The envelope with its payload upcast to the current version."""
        contract = self.get(envelope.type)
        if envelope.version == contract.version:
            return envelope
        data = contract.upcast(dict(envelope.payload), envelope.version)
        payload = contract.payload.model_validate(data).model_dump(mode="json")
        return envelope.model_copy(update={"payload": payload, "version": contract.version})

    def json_schemas(self) -> dict[str, dict[str, Any]]:
        """One JSON Schema per event type and version, envelope included."""
        envelope = Envelope.model_json_schema()
        out: dict[str, dict[str, Any]] = {}
        for contract in self:
            schema = dict(envelope)
            schema["title"] = f"{contract.type} v{contract.version}"
            schema["description"] = contract.summary
            props = dict(schema["properties"])
            props["type"] = {"const": contract.type}
            props["version"] = {"const": contract.version}
            props["service"] = {"const": contract.service}
            props["payload"] = contract.payload.model_json_schema()
            schema["properties"] = props
            out[f"{contract.type}.v{contract.version}"] = schema
        return out


REGISTRY = Registry()
