"""Every knob of the service, read once from environment variables.

Each scenario of the lab differs from its fix in exactly one of these, so a bad value
stops the service at start with one clear line instead of being guessed at.
README.md lists them all with their defaults.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger("sample_workload")

# Admin endpoints (profiles, pool state) answer anyone who can connect, as Go's
# net/http/pprof does; binding to loopback only is what keeps them private.
LOOPBACK = "127.0.0.1"

WRITE_MODES = ("single", "batch")
FLUSH_METHODS = ("copy", "upsert")
RETRY_POLICIES = ("none", "immediate", "backoff")
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


class SettingsError(ValueError):
    """A setting that cannot be used; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    database_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    pool_size: int = 10
    pool_max_overflow: int = 10
    pool_timeout_s: float = 30.0  # SQLAlchemy's own default: a waiting task gives up after this
    bcrypt_cost: int = 10  # ~60 ms per check on this 2-core machine; 12 is ~240 ms
    write_mode: str = "single"
    flush_interval_s: float = 1.0
    flush_max_records: int = 1000
    flush_method: str = "copy"
    buffer_limit: int = 100_000
    record_hold_ms: float = 0.0
    record_hold_jitter: float = 1.0  # ±100 %: the hold is uniform in [0, 2 × RECORD_HOLD_MS]
    retry_policy: str = "none"
    retry_attempts: int = 5  # retries after the first attempt under `immediate`
    statement_timeout_ms: int = 100
    heavy_fraction: float = 0.3
    heavy_query_ms: int = 300  # longer than the statement timeout, so a heavy query always times out
    backoff_max_attempts: int = 3
    backoff_base_ms: float = 25.0
    backoff_max_ms: float = 1000.0
    retry_budget_ratio: float = 0.1  # one retry token per ten requests
    retry_budget_max_tokens: float = 10.0
    # Consecutive timed-out attempts that open the circuit. At 30 % heavy requests, 5 in a
    # row turn up every few hundred requests (measured: the breaker then rejected a third of
    # a 15 s run); 10 in a row (0.3^10) means the dependency is down, not merely slow at times.
    breaker_threshold: int = 10
    breaker_cooldown_s: float = 5.0
    random_seed: int = -1  # seeds the heavy-request draw and the jitter; -1 = from the OS
    log_level: str = "info"
    host: str = LOOPBACK
    port: int = 8000
    seed: bool = False
    seed_users: int = 5000
    seed_records_per_user: int = 10
    graceful_shutdown_s: float = 5.0  # perflab's lab sends SIGKILL 10 s after SIGTERM
    shutdown_flush_timeout_s: float = 3.0
    spill_dir: str = ""  # where unflushable records go at shutdown; "" = the working directory

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f.name.upper())
            if raw is None or raw.strip() == "":
                continue
            values[f.name] = _parse(f.name.upper(), raw.strip(), f.default)
        host = values.get("host", LOOPBACK)
        if host not in (LOOPBACK, "localhost"):
            log.warning("HOST=%s ignored: the service binds %s only (its /debug endpoints are unauthenticated)",
                        host, LOOPBACK)
        values["host"] = LOOPBACK
        s = cls(**values)
        s.validate()
        return s

    def validate(self) -> None:
        def need(cond: bool, var: str, what: str) -> None:
            if not cond:
                raise SettingsError(f"{var}={getattr(self, var.lower())!r}: {what}")

        need(self.database_url.split(":", 1)[0].split("+")[0] in ("postgresql", "sqlite"),
             "DATABASE_URL", "must be a postgresql+psycopg:// or sqlite+aiosqlite:/// URL")
        need(self.pool_size >= 1, "POOL_SIZE", "must be at least 1")
        need(self.pool_max_overflow >= 0, "POOL_MAX_OVERFLOW", "must be 0 or more")
        need(self.pool_timeout_s > 0, "POOL_TIMEOUT_S", "must be positive")
        need(4 <= self.bcrypt_cost <= 31, "BCRYPT_COST", "bcrypt accepts 4 to 31")
        need(self.write_mode in WRITE_MODES, "WRITE_MODE", f"one of {', '.join(WRITE_MODES)}")
        need(self.flush_interval_s > 0, "FLUSH_INTERVAL_S", "must be positive")
        need(self.flush_max_records >= 1, "FLUSH_MAX_RECORDS", "must be at least 1")
        need(self.flush_method in FLUSH_METHODS, "FLUSH_METHOD", f"one of {', '.join(FLUSH_METHODS)}")
        need(self.buffer_limit >= 1, "BUFFER_LIMIT", "must be at least 1")
        need(self.record_hold_ms >= 0, "RECORD_HOLD_MS", "must be 0 or more")
        need(0 <= self.record_hold_jitter <= 1, "RECORD_HOLD_JITTER", "a fraction from 0 to 1")
        need(self.retry_policy in RETRY_POLICIES, "RETRY_POLICY", f"one of {', '.join(RETRY_POLICIES)}")
        need(self.retry_attempts >= 0, "RETRY_ATTEMPTS", "must be 0 or more")
        need(self.statement_timeout_ms >= 1, "STATEMENT_TIMEOUT_MS", "must be at least 1")
        need(0 <= self.heavy_fraction <= 1, "HEAVY_FRACTION", "a fraction from 0 to 1")
        need(self.heavy_query_ms >= 0, "HEAVY_QUERY_MS", "must be 0 or more")
        need(self.backoff_max_attempts >= 1, "BACKOFF_MAX_ATTEMPTS", "must be at least 1")
        need(0 <= self.retry_budget_ratio <= 1, "RETRY_BUDGET_RATIO", "a fraction from 0 to 1")
        need(self.breaker_threshold >= 1, "BREAKER_THRESHOLD", "must be at least 1")
        need(self.log_level in LOG_LEVELS, "LOG_LEVEL", f"one of {', '.join(LOG_LEVELS)}")
        need(0 <= self.port <= 65535, "PORT", "a TCP port")
        need(self.seed_users >= 1, "SEED_USERS", "must be at least 1")
        need(self.seed_records_per_user >= 0, "SEED_RECORDS_PER_USER", "must be 0 or more")

    @property
    def dialect(self) -> str:
        return self.database_url.split(":", 1)[0].split("+")[0]

    def public(self) -> dict[str, Any]:
        """The settings as /debug/vars shows them: the database password masked."""
        out = asdict(self)
        out["database_url"] = mask_password(self.database_url)
        return out


def mask_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _parse(var: str, raw: str, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError:
        kind = "a boolean (1/0)" if isinstance(default, bool) else type(default).__name__
        raise SettingsError(f"{var}={raw!r}: not {'an' if kind == 'int' else 'a'} {kind}") from None
    return raw.lower() if var in ("WRITE_MODE", "FLUSH_METHOD", "RETRY_POLICY", "LOG_LEVEL") else raw
