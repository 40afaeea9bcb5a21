"""The SQL store: SQLAlchemy models, repositories, unit of work and the store facade."""

from agent_pool_store.sql.engine import DEFAULT_URL, EngineSettings
from agent_pool_store.sql.store import SqlAgentPoolStore, open_store

__all__ = ["DEFAULT_URL", "EngineSettings", "SqlAgentPoolStore", "open_store"]
