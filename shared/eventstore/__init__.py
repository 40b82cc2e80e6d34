"""The write side every service shares: its events in PostgreSQL, written in groups, relayed
to the bus in order.

- ``application``   the service's eventsourcing Application, built from settings
- ``recorder``      how a batch of events is inserted (typed arrays, in binary)
- ``postgres``      the library's PostgreSQL settings and the service's own schema
- ``group_commit``  commands that arrive together saved in one transaction, each answered alone
- ``command_path`` the one way a command reaches an aggregate: 404, center, key, If-Match
- ``outbox``        the relay: every stored event onto the stream, in log order, exactly once
"""
