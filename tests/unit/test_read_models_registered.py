"""Every read model a service defines can be rebuilt by name: it is in pyproject.toml's table."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import services
from shared.readmodels.readmodel import ReadModel, load_read_model, registered


def defined_read_models() -> dict[str, ReadModel]:
    found: dict[str, ReadModel] = {}
    for info in pkgutil.walk_packages(services.__path__, "services."):
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if isinstance(value, ReadModel):
                found.setdefault(f"{info.name}:{name}", value)
    return found


def test_every_read_model_a_service_defines_is_registered_for_rebuild() -> None:
    defined = defined_read_models()
    assert defined, "the services define no read model?"
    loaded = [load_read_model(name) for name in registered()]
    unregistered = sorted(ref for ref, model in defined.items()
                          if not any(model is found for found in loaded))
    assert not unregistered, (
        f"add {unregistered} to [project.entry-points.\"sixstep.read_models\"] in pyproject.toml")
    assert all(any(found is model for model in defined.values()) for found in loaded)


def test_an_analyst_who_mistypes_a_read_model_is_told_the_registered_ones() -> None:
    with pytest.raises(LookupError, match=r"registered ones are .*feedback\.figures.*intake"):
        load_read_model("intak")
