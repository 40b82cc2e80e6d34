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


def test_the_indexes_a_rebuild_makes_last_are_indexes_of_the_read_models_ddl() -> None:
    """``built_after`` names non-unique indexes its DDL makes; a name it does not make (a
    typo, an index renamed) is refused before a rebuild starts, not found missing after."""
    from dataclasses import replace

    from shared.analytics.rebuild import RebuildError, split_indexes

    put_off = {name: split_indexes(load_read_model(name))[1] for name in registered()}
    assert put_off["intake"] and put_off["followup"] and put_off["feedback"]
    assert not any("UNIQUE" in s.upper() for found in put_off.values() for s in found)
    intake = load_read_model("intake")
    with pytest.raises(RebuildError, match="cases_by_clerk"):
        split_indexes(replace(intake, built_after=intake.built_after | {"cases_by_clerk"}))
