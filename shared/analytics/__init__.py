"""Analysts' tools over the one replayable log: replay, rebuild, export, time travel, report.

Each module is one job and works in bounded memory whatever the length of history:

- ``replay``     read the stream (a selection of it) in stream order, upcast to current versions
- ``checkpoint`` where a replay or export stopped, so that a rerun resumes there
- ``rebuild``    rebuild a read model into a staging schema, diff it, switch over atomically
- ``export``     flattened events to Parquet or CSV, partitioned by month, no personal data
- ``timetravel`` a case as it stood at any moment
- ``figures``    the center's figures from an export (DuckDB over the Parquet files)
- ``report``     those figures as a terminal table and an HTML page with inline SVG charts

What a read model is, and the bulk writes a rebuild uses, are the services' too: they live in
``shared.readmodels``.
"""
