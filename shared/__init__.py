"""The product code every sixstep service uses, in layers: each folder imports only those
below it (pyproject.toml's ``[tool.importlinter]``; ``make test`` checks it). Top to bottom:
cli, analytics, http | web, runtime, eventstore | readmodels, bus, security | tracing, settings,
catalogue | kernel, contracts. docs/DEVELOPING.md says what each module holds."""
