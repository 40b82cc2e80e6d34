"""Development tools, not part of the product (the installed package has no ``tools``):

- ``devservers``  local NATS and PostgreSQL servers for ``make run`` and the test fixtures
- ``run``         ``make run``: the servers and the three services on this machine
"""
