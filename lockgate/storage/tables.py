"""The database tables, as SQLAlchemy typed declarative classes.

The migrations in `migrations/versions/` create exactly these (a test compares them); change a
table here and add a migration there.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    CHAR,
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    Integer,
    MetaData,
    String,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

__all__ = [
    "ApiKeyRow",
    "Base",
    "PromptVersionRow",
    "RevisionRow",
    "SpendRow",
    "TeamRow",
    "UsageRow",
    "UtcDateTime",
]

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "pk": "pk_%(table_name)s",
}
"""Constraint names are fixed, so migrations can refer to them and errors can be told apart."""

JsonObject = dict[str, Any]


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime, stored in UTC and read back aware on every database.

    PostgreSQL keeps the zone (timestamptz); SQLite stores text without one, so values are turned
    into UTC on the way in and marked UTC on the way out. Naive datetimes are refused.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} given; expected a time zone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class TeamRow(Base):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    models: Mapped[list[str]] = mapped_column(JSON)
    limits: Mapped[JsonObject] = mapped_column(JSON)
    budget: Mapped[JsonObject | None] = mapped_column(JSON, nullable=True)
    meta: Mapped[dict[str, str]] = mapped_column("metadata", JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    key_hash: Mapped[str] = mapped_column(String(80), unique=True)
    prefix: Mapped[str] = mapped_column(String(32))
    team: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    models: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    limits: Mapped[JsonObject] = mapped_column(JSON)
    budget: Mapped[JsonObject | None] = mapped_column(JSON, nullable=True)
    meta: Mapped[dict[str, str]] = mapped_column("metadata", JSON)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class SpendRow(Base):
    """Spend per (scope, period) in integer micro-dollars, so concurrent sums are exact."""

    __tablename__ = "spend"

    scope: Mapped[str] = mapped_column(String(512), primary_key=True)
    period: Mapped[str] = mapped_column(String(64), primary_key=True)
    usd_micros: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class RevisionRow(Base):
    """One row (id 1) whose `value` grows with every key or team change; workers poll it."""

    __tablename__ = "revision"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    value: Mapped[int] = mapped_column(BigInteger)


class UsageRow(Base):
    """The usage ledger: one row per request, keyed by its request id (writes are idempotent).

    Indexed only by time: reports scan a time range, and every index more is a cost on the write
    each request causes.
    """

    __tablename__ = "usage"

    request_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    client_request_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    endpoint: Mapped[str] = mapped_column(String(32))
    key_name: Mapped[str | None] = mapped_column(String(128), nullable=True)
    team: Mapped[str | None] = mapped_column(String(128), nullable=True)
    subject: Mapped[str | None] = mapped_column(String(512), nullable=True)
    model: Mapped[str | None] = mapped_column(String(256), nullable=True)
    provider: Mapped[str | None] = mapped_column(String(128), nullable=True)
    target_model: Mapped[str | None] = mapped_column(String(256), nullable=True)
    prompt: Mapped[str | None] = mapped_column(String(128), nullable=True)
    prompt_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[int] = mapped_column(Integer)
    error_type: Mapped[str | None] = mapped_column(String(64), nullable=True)
    input_tokens: Mapped[int] = mapped_column(Integer)
    output_tokens: Mapped[int] = mapped_column(Integer)
    cached_tokens: Mapped[int] = mapped_column(Integer)
    estimated: Mapped[bool] = mapped_column(Boolean)
    cost_usd_micros: Mapped[int] = mapped_column(BigInteger)
    latency_ms: Mapped[float] = mapped_column(Float)
    ttft_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    cache_hit: Mapped[bool] = mapped_column(Boolean)
    attempts: Mapped[int] = mapped_column(Integer)
    stream: Mapped[bool] = mapped_column(Boolean)
    tags: Mapped[dict[str, str]] = mapped_column(JSON)


class PromptVersionRow(Base):
    """A prompt version that served traffic, with the SHA-256 of its file when it first did.

    Published versions must not change: the gateway compares these hashes with the files it
    loads and warns about a version whose file differs. The first hash recorded is kept.
    """

    __tablename__ = "prompt_versions"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    sha256: Mapped[str] = mapped_column(CHAR(64))
    first_served_at: Mapped[datetime] = mapped_column(UtcDateTime)
