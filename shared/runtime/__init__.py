"""A service process: everything it runs, wired from one settings object.

- ``lifecycle``   the running service (``Runtime``): store, pool, bus, group commit, relay,
                  consumers, background loops; ``start_runtime`` and ``stop_runtime``
- ``background``  supervised background loops, restarted on failure, stopped on shutdown
- ``metrics``     the service's Prometheus metrics
- ``calendars``   each center's working-day calendar, built once from settings
- ``logs``        structured logs, scrubbed of personal data
"""
