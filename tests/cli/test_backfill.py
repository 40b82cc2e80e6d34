"""``sixstep ops backfill`` (the upgrade's once-only read of the log into the tables it added)
says what is wrong and exits 2 rather than a traceback: services' schemas it cannot find
(another ``SCHEMA_PREFIX``, or the new release not started yet)."""

from __future__ import annotations

from shared.settings import Settings
from tests.cli.in_process import ran
from tests.faults.harness import service_env


def test_a_backfill_without_the_services_tables_names_them_and_exits_2(
        settings: Settings) -> None:
    """The stream is there (``ops apply``), the services never ran under this
    ``SCHEMA_PREFIX``: nothing to write into. Before, a traceback from PostgreSQL (no schema
    selected to create ``due_sources_backfill`` in), after it had maybe written a part."""
    env = service_env(settings)
    assert ran(["ops", "apply"], env=env).code == 0
    out = ran(["ops", "backfill"], env=env)
    assert out.code == 2, out.out + out.err
    said = out.out + out.err
    for schema in (settings.schema_for(s) for s in ("intake", "feedback", "followup")):
        assert schema in said, said
    assert "SCHEMA_PREFIX" in said, said
