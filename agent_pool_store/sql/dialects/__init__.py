"""One module per SQL dialect: everything that differs between SQLite and PostgreSQL.

- :mod:`.protocol`: :class:`~.protocol.SqlDialect`, the capabilities the layers above use.
- :mod:`.registry`: which class serves an engine or a URL (the only place that compares a
  dialect's name).
- :mod:`.sqlite`, :mod:`.sqlite_waiter`: WAL and ``BEGIN IMMEDIATE``, driver-level writes,
  ``PRAGMA data_version`` polling.
- :mod:`.postgresql`, :mod:`.postgresql_statements`, :mod:`.postgresql_waiter`: the batch
  write statement, the one-statement append and look-up, ``LISTEN`` / ``NOTIFY``.
- :mod:`.driver`: statements compiled by SQLAlchemy and run on the driver connection.

This package's ``__init__`` imports nothing, so importing any one module of it never
imports the others.
"""
