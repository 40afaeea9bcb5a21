"""After ``fork``, a child never uses a connection its parent opened.

Applications fork with stores already in use (gunicorn's and Celery's pre-fork workers,
``multiprocessing`` with the fork start method). A pooled connection copied into the child
shares its socket or file with the parent, so both would talk over it at once. Every engine
the store builds or is given is registered here, and in a forked child its pool is replaced
by an empty one without closing the parent's connections (``Engine.dispose(close=False)``,
SQLAlchemy's documented pattern): the child then opens connections of its own. The waiters
of ``follow`` check the process id themselves (``sql/dialects/*_waiter.py``).
"""

from __future__ import annotations

import os
import weakref

from sqlalchemy import Engine

_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()


def _forget_parent_connections() -> None:
    for engine in list(_ENGINES):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_forget_parent_connections)


def forget_connections_in_children(engine: Engine) -> None:
    """Give ``engine`` an empty connection pool in every process forked from this one."""
    _ENGINES.add(engine)
