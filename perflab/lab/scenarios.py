"""The lab's scenarios: each a k6 script and service settings; `fixed` changes one setting.

The numbers come from LAB-NOTES (measured on the 2-core machine): each default puts
the service just past the point where its signature shows, and the fix is the one
knob an engineer would turn. perflab.lab.sample turns a scenario into a target, so a
scenario runs through the same runner as `perflab run --target`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from perflab.errors import PerflabError

WORKLOAD_DIR = Path(__file__).resolve().parents[2] / "sample_workload"

# Every run starts from these, so two runs differ only in what a scenario states.
BASE_SETTINGS: dict[str, str] = {
    "POOL_SIZE": "10",
    "POOL_MAX_OVERFLOW": "10",
    "BCRYPT_COST": "10",
    "WRITE_MODE": "single",
    "FLUSH_INTERVAL_S": "1",
    "FLUSH_METHOD": "copy",
    "RECORD_HOLD_MS": "0",
    "RETRY_POLICY": "none",
    "STATEMENT_TIMEOUT_MS": "100",
    "HEAVY_FRACTION": "0",
    "LOG_LEVEL": "warning",
    "RANDOM_SEED": "42",  # the same heavy-request draws and jitter in a run and its fix
}


# Where the sample service's metrics are scraped, once a second, like any target's:
# Prometheus text under standard names (OpenTelemetry's for the pool and requests in
# flight, prometheus_client's process collector), written to metrics.prom.
METRICS_PATH = "/metrics"

# py-spy on the sample service over the steady window ([profiles] pyspy of its target), so
# its login-storm flame graph shows the hashing itself (bcrypt's Rust frames under Python).
# py-spy 0.4.3 --native counts threads waiting on a futex as running (anyio's idle workers
# were ~50 % of the samples); perflab.lab.pyspy leaves waiting stacks out of the CPU profile.
SAMPLE_PYSPY = True

# The sample service's metric names by signal role (perflab.vocab.SIGNAL_ROLES), recorded
# with every lab run as a user's [roles] table is: only names perflab does not recognise
# by itself belong here, e.g. "downstream_calls": "sample_db_queries_total".
SAMPLE_ROLES: dict[str, str] = {
    "requests": "app_requests_total",
    "errors": "app_errors_total",
    "downstream_calls": "app_db_queries_total",
    "retries": "app_retries_total",
    "buffer_depth": "app_buffer_depth",
    "buffer_limit": "app_buffer_limit",
}


@dataclass(frozen=True)
class Scenario:
    name: str
    script: str
    rate: float  # the k6 arrival rate (iterations/s) that shows the signature here
    settings: dict[str, str] = field(default_factory=dict)
    fix: dict[str, str] = field(default_factory=dict)  # exactly one setting
    signature: str = ""
    why: str = ""


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            name="healthy",
            script="healthy.js",
            rate=73,  # the total of healthy.js's mix: 3 login + 50 records + 10 challenges + 10 reports per second
            signature="none",
            why="a mixed load well inside capacity: the baseline every signature is judged against",
        ),
        Scenario(
            name="login-storm",
            script="login-storm.js",
            rate=10,
            settings={"BCRYPT_COST": "12"},
            fix={"BCRYPT_COST": "10"},
            signature="login-storm",
            why="bcrypt at cost 12 costs ~240 ms of CPU a login: 10 logins/s need more than 2 cores",
        ),
        Scenario(
            name="false-idle",
            script="false-idle.js",
            rate=40,
            settings={"WRITE_MODE": "single", "POOL_SIZE": "2", "POOL_MAX_OVERFLOW": "0", "RECORD_HOLD_MS": "50"},
            fix={"WRITE_MODE": "batch"},
            signature="false-idle",
            why="2 connections held ~50 ms each serve ~40 writes/s: requests queue for the pool, CPU idles",
        ),
        Scenario(
            name="retry-storm",
            script="retry-storm.js",
            rate=20,
            settings={"RETRY_POLICY": "immediate", "RETRY_ATTEMPTS": "5", "HEAVY_FRACTION": "0.3",
                      "STATEMENT_TIMEOUT_MS": "100"},
            fix={"RETRY_POLICY": "backoff"},
            signature="retry-storm",
            why="30 % of reports time out at 100 ms and are retried 5 times at once: load multiplies",
        ),
    )
}


def get(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise PerflabError(f"unknown scenario {name!r}: one of {', '.join(SCENARIOS)}") from None
