"""The SQL store: SQLAlchemy models, repositories, unit of work, runner, dialects, facade.

Import from the modules themselves (``agent_pool_store.sql.store`` for the facade and
``open_store``; the package ``agent_pool_store`` re-exports the public names). This
``__init__`` imports nothing, so importing one module of the package never imports the
rest (see ``docs/architecture.md``, "Import rules").
"""
