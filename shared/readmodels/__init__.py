"""The read side every service shares: projections in PostgreSQL, rebuilt from the log at will.

- ``readmodel``   what a read model is (handler, DDL, consumer, subjects) and the registered ones
- ``pool``        the asyncpg pool, the service's schema first
- ``migrations``  the read models' DDL, applied once at start
- ``positions``   read-your-writes: wait until a read model applied a write's position
- ``public``      the read routes' typed answers (``Public``, ``Moment``)
- ``bulk``        COPY and set-based writes for a rebuild's staging tables
"""
