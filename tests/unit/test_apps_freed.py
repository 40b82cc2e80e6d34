"""What a test built is gone once it ended: the run's heap is the running test's, not that of
every app before it (tests/conftest.py forgets the endpoints FastAPI classified).

Our routes are closures over their app, as this one is. Two tests in this
file's order: the first builds an app and leaves a weak reference behind, the second finds it
dead after one collection."""

from __future__ import annotations

import gc
import weakref

import pytest
from fastapi import FastAPI

from shared.http.app import new_app

_built: list[weakref.ref[FastAPI]] = []


def test_a_test_builds_an_app_whose_routes_close_over_it() -> None:
    app = new_app(title="counter")

    @app.get("/name")
    async def name() -> dict[str, str]:
        return {"name": app.title}

    _built.append(weakref.ref(app))


def test_the_app_of_the_test_before_is_gone_once_it_ended() -> None:
    if not _built:
        pytest.skip("runs after the test before it (run the file)")
    gc.collect()
    assert _built[0]() is None, "an earlier test's app is still reachable"
