"""The doctor's classifier as a decision table over seeded synthetic runs (the clinic.js pattern).

GIVEN a synthetic run (numpy with a fixed seed → polars frames in rundata's shapes), built
so that the statistic a threshold judges lands exactly where the case says (the latency
is rescaled so its steady-window p95 is the target, the CPU shifted so its p50 is ...),
WHEN the signatures judge it, THEN each gives the verdict of its row: present, absent,
insufficient-data, and both sides of every threshold.

The last part drives the real thing: a user-brought group ingested with
`perflab ingest --run` and read back with `perflab doctor`.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from perflab.analysis import roles, rundata
from perflab.jsonable import to_jsonable
from perflab.analysis.rundata import Profile, RunData
from perflab.analysis.signatures import (
    diagnose_data, false_idle, lock_contention, loadgen_saturated, login_storm, memory_pressure,
    pool_saturation, retry_storm, signatures, window_of,
)
from perflab.analysis.signatures import _frames
from perflab.analysis.signatures._measure import MIN_REQUESTS, MIN_SAMPLES, Evidence, all_of, any_of
from perflab.analysis.steady import TRIM_FRACTION, find_window
from tests.helpers import run_cli

FIXTURES = Path(__file__).parent.parent / "fixtures"
T0 = 1_800_000_000.0
SAMPLE_HZ = 4.0
MIB = 2**20

# A healthy service, as the lab measured it: every signature absent.
CPU_MISSING = "the service's CPU (resource samples, or a cpu_seconds role such as process_cpu_seconds_total)"
HEALTHY: dict[str, Any] = dict(
    seconds=20.0, rps=40.0, p95_ms=35.0, error_rate=0.0, timeout_status_rate=0.0,
    service_cpu=35.0, k6_cpu=4.0, host_cpu=60.0, cpu_count=2,
    rss_mb=70.0, rss_growth=0.0, waiting=0.0, in_flight=2.0,
    pool_size=10, max_overflow=10, full_fraction=0.0, qpr=1.5, timeouts_per_request=0.0,
    hashing=0.7, serialization=0.0, gc=0.01, profile_samples=300, profile_duration_s=None,
    heap_mb=None, block=None, pg_lock_share=0.0, pg_active=3,
    dropped=0, vus_peak=2.0, vus_max=40.0,
    k6=True, resources=True, vars=True, profile=True, pg=True,
)
FALSE_IDLE = dict(HEALTHY, p95_ms=2500.0, service_cpu=10.0, waiting=50.0, in_flight=55.0, pool_size=2,
                  max_overflow=0, full_fraction=1.0, qpr=1.0, hashing=0.0, profile_samples=40)
LOGIN_STORM = dict(HEALTHY, p95_ms=6000.0, service_cpu=190.0, host_cpu=200.0, in_flight=30.0, hashing=0.99,
                   qpr=1.0, dropped=30, vus_peak=41.0, vus_max=43.0)
RETRY_STORM = dict(HEALTHY, p95_ms=620.0, error_rate=0.3, service_cpu=12.0, qpr=2.6, timeouts_per_request=0.3,
                   hashing=0.0, in_flight=4.0)


def synth(**kw: Any) -> RunData:
    """A run whose steady-window statistics are exactly the given ones (seeded noise around them)."""
    p = dict(HEALTHY, **kw)
    rng = np.random.default_rng(20240601)
    data = RunData(run_id="synthetic", cpu_count=p["cpu_count"])
    n_req = int(p["seconds"] * p["rps"])
    # Constant arrival rate, as k6 schedules it: evenly spaced, each request anywhere in its slot.
    t_req = T0 + (np.arange(n_req) + rng.uniform(0, 1, n_req)) / p["rps"]
    window = find_window(pl.Series(t_req))
    assert window is not None
    inside_req = (t_req >= window.start_s) & (t_req <= window.end_s)
    if p["k6"]:
        d = rng.lognormal(0.0, 0.5, n_req)
        d *= p["p95_ms"] / np.quantile(d[inside_req], 0.95)
        failed = rng.uniform(0, 1, n_req) < p["error_rate"]
        timeout = rng.uniform(0, 1, n_req) < p["timeout_status_rate"]
        data.requests = pl.DataFrame({
            "t_s": t_req, "duration_ms": d,
            "status": np.where(timeout, 504, np.where(failed, 500, 200)).astype(np.int64),
            "error_code": [None] * n_req, "failed": failed | timeout, "endpoint": ["e"] * n_req,
        }, schema=rundata.REQUESTS_SCHEMA)
        secs = T0 + np.arange(1, int(p["seconds"]) + 1, dtype=float)
        # While k6 drops iterations its VUs stay at their peak (a slow target holds them all,
        # a busy k6 holds few); otherwise the peak is one reading among idle ones.
        k6_rows = [(t, "vus", p["vus_peak"] if p["dropped"] or i == len(secs) // 2 else 1.0)
                   for i, t in enumerate(secs)]
        k6_rows += [(t, "vus_max", p["vus_max"]) for t in secs]
        # Dropped iterations spread over the middle of the run (inside the steady window).
        drop_t = np.linspace(window.start_s + 1, window.end_s - 1, p["dropped"]) if p["dropped"] else []
        k6_rows += [(float(t), "dropped_iterations", 1.0) for t in drop_t]
        data.k6 = pl.DataFrame(k6_rows, schema=rundata.K6_SCHEMA, orient="row").sort("t_s")
    n_s = int(p["seconds"] * SAMPLE_HZ)
    t_s = T0 + np.arange(n_s) / SAMPLE_HZ
    inside = (t_s >= window.start_s) & (t_s <= window.end_s)
    if p["resources"]:
        def cpu(level: float) -> np.ndarray:
            v = level + 4.0 * rng.integers(-2, 3, n_s)  # 4 % steps, as at 4 Hz
            return v + (level - np.median(v[inside]))

        mid = (window.start_s + window.end_s) / 2
        rss = np.where(t_s < mid, p["rss_mb"], p["rss_mb"] * (1 + p["rss_growth"])) * MIB
        frames = [pl.DataFrame({"t_s": t_s, "role": role, "cpu_pct": cpu(level), "rss_bytes": rss,
                                "threads": 8.0}, schema=rundata.RESOURCES_SCHEMA)
                  for role, level in (("service", p["service_cpu"]), ("k6", p["k6_cpu"]),
                                      ("host", p["host_cpu"]))]
        data.resources = pl.concat(frames).sort("t_s", "role")
    if p["vars"]:
        def gauge(level: float) -> np.ndarray:
            v = np.maximum(level + rng.integers(-2, 3, n_s), 0).astype(float)
            return v + (level - np.median(v[inside]))

        # The service's metrics by role: the pool's capacity (size + overflow) as pool_size.
        capacity = p["pool_size"] + p["max_overflow"]
        idx_in = np.nonzero(inside)[0]
        full = np.zeros(n_s, dtype=bool)
        full[rng.choice(idx_in, int(round(p["full_fraction"] * idx_in.size)), replace=False)] = True
        requests = np.cumsum(np.full(n_s, p["rps"] / SAMPLE_HZ))
        series = {
            ("pool_waiting", "{}"): gauge(p["waiting"]),
            ("in_flight", "{}"): gauge(p["in_flight"]),
            ("pool_size", "{}"): np.full(n_s, float(capacity)),
            ("pool_in_use", "{}"): np.where(full, capacity, max(capacity - 1, 0)).astype(float),
            ("requests", "{}"): requests,
            ("downstream_calls", "{}"): requests * p["qpr"],
            ("errors", '{"key":"timeout"}'): requests * p["timeouts_per_request"],
            ("retries", "{}"): requests * max(p["qpr"] - 1, 0),
        }
        data.signals = pl.concat([pl.DataFrame({"t_s": t_s, "role": role, "series": s, "value": v},
                                               schema=roles.SIGNALS_SCHEMA)
                                  for (role, s), v in series.items()]).sort("t_s", "role")
    if p["profile"]:
        cats = {"hashing": p["hashing"], "serialization": p["serialization"], "gc": p["gc"]}
        cats["other"] = max(0.0, 1 - sum(cats.values()))
        top = {"hashing": [{"name": "bcrypt.checkpw", "share": p["hashing"]}] if p["hashing"] else [],
               "gc": [{"name": "runtime.mallocgc", "share": p["gc"]}] if p["gc"] else []}
        dur = p["profile_duration_s"]
        total = p["service_cpu"] / 100 * (dur or 6.0) * 1e9
        data.profiles.append(Profile(1, "service.cpu.pb.gz", "pprof", "cpu", "cpu", "nanoseconds", total,
                                     p["profile_samples"], time_s=T0 + 6, duration_s=dur,
                                     categories={"categories": cats, "top_frames": top},
                                     cum_shares=[("main.login", 1.0), ("bcrypt.checkpw", p["hashing"])]))
    if p["heap_mb"] is not None:
        for i, mb in enumerate(p["heap_mb"]):
            data.profiles.append(Profile(10 + i, f"heap{i}.pb.gz", "pprof", "heap", "inuse_space", "bytes",
                                         mb * MIB, 100, time_s=T0 + i))
    if p["block"] is not None:
        data.profiles.append(Profile(20, "block.pb.gz", "pprof", "contention", "delay", "nanoseconds",
                                     float(p["block"]["value"].sum()), 50, stacks=p["block"]))
    if p["pg"]:
        rows = []
        for no, t in enumerate(T0 + np.arange(0, p["seconds"], 0.5)):
            rows.append((no, float(t), "active", None, None, True))  # the sampler itself
            n_lock = int(round(p["pg_lock_share"] * p["pg_active"]))
            for i in range(p["pg_active"]):
                rows.append((no, float(t), "active", "Lock" if i < n_lock else None, None, False))
        data.pg_activity = pl.DataFrame(rows, schema=rundata.PG_ACTIVITY_SCHEMA, orient="row")
    return data


def block_stacks(pool_s: float, lock_s: float, other_s: float) -> pl.DataFrame:
    """A Go block profile (delay in ns) with pool-acquire, mutex and downstream-call waits."""
    return pl.DataFrame({
        "frames": [["runtime.chansend1", "main.(*dbPool).acquire", "main.handler"],
                   ["sync.(*Mutex).Lock", "main.(*cache).get", "main.handler"],
                   ["runtime.selectgo", "main.callInventory", "main.handler"]],
        "value": [int(pool_s * 1e9), int(lock_s * 1e9), int(other_s * 1e9)],
    }, schema=rundata.STACKS_SCHEMA)


def verdict(module: Any, data: RunData) -> str:
    return module.judge(data, window_of(data)).verdict


def finding(module: Any, data: RunData) -> dict[str, Any]:
    return to_jsonable(module.judge(data, window_of(data)))


# -- the decision table ---------------------------------------------------------------------

FI, LS, RS = false_idle, login_storm, retry_storm
PS, LC, MP, LG = pool_saturation, lock_contention, memory_pressure, loadgen_saturated

TABLE: list[tuple[str, Any, dict[str, Any], str]] = [
    # false-idle: p95 ≥ 500 ms, waiting p50 ≥ 5, service CPU p50 ≤ 50 %
    ("false idle", FI, FALSE_IDLE, "present"),
    ("healthy", FI, HEALTHY, "absent"),
    ("login storm is not idle", FI, LOGIN_STORM, "absent"),
    ("retry storm: slow but nobody waits", FI, RETRY_STORM, "absent"),
    ("p95 just above", FI, dict(FALSE_IDLE, p95_ms=FI.P95_MIN_MS * 1.02), "present"),
    ("p95 just below", FI, dict(FALSE_IDLE, p95_ms=FI.P95_MIN_MS * 0.98), "absent"),
    ("waiting at the threshold", FI, dict(FALSE_IDLE, waiting=FI.WAITING_MIN), "present"),
    ("waiting just below", FI, dict(FALSE_IDLE, waiting=FI.WAITING_MIN - 0.5), "absent"),
    ("CPU just below the cap", FI, dict(FALSE_IDLE, service_cpu=FI.CPU_MAX_PCT - 1), "present"),
    ("CPU just above the cap", FI, dict(FALSE_IDLE, service_cpu=FI.CPU_MAX_PCT + 1), "absent"),
    ("no k6", FI, dict(FALSE_IDLE, k6=False), "insufficient-data"),
    ("no waiting gauge", FI, dict(FALSE_IDLE, vars=False), "insufficient-data"),
    ("no CPU at all", FI, dict(FALSE_IDLE, resources=False, profile=False), "insufficient-data"),
    ("CPU from the profile's own rate", FI, dict(FALSE_IDLE, resources=False, profile_duration_s=6.0), "present"),
    ("too few requests", FI, dict(FALSE_IDLE, seconds=4.0, rps=5.0), "insufficient-data"),
    # login-storm: p95 ≥ 500 ms, CPU p50 ≥ 80 %, hashing/serialization ≥ 30 % (each when known)
    ("login storm", LS, LOGIN_STORM, "present"),
    ("healthy: hashing hot but CPU low", LS, HEALTHY, "absent"),
    ("fixed cost: CPU 67 %, p95 80 ms", LS, dict(LOGIN_STORM, service_cpu=67.0, p95_ms=80.0, dropped=0), "absent"),
    ("CPU just above", LS, dict(LOGIN_STORM, service_cpu=LS.CPU_MIN_PCT + 1), "present"),
    ("CPU just below", LS, dict(LOGIN_STORM, service_cpu=LS.CPU_MIN_PCT - 1), "absent"),
    ("hashing just above", LS, dict(LOGIN_STORM, hashing=LS.HOT_SHARE_MIN + 0.01), "present"),
    ("hashing just below", LS, dict(LOGIN_STORM, hashing=LS.HOT_SHARE_MIN - 0.01), "absent"),
    ("serialization hot instead", LS, dict(LOGIN_STORM, hashing=0.0, serialization=0.5), "present"),
    ("p95 just below", LS, dict(LOGIN_STORM, p95_ms=LS.P95_MIN_MS * 0.98), "absent"),
    ("p95 just above", LS, dict(LOGIN_STORM, p95_ms=LS.P95_MIN_MS * 1.02), "present"),
    ("user data: no CPU samples, profile hot", LS, dict(LOGIN_STORM, resources=False), "present"),
    ("user data: no CPU samples, profile cold", LS, dict(LOGIN_STORM, resources=False, hashing=0.1), "absent"),
    ("no profile: judged on CPU", LS, dict(LOGIN_STORM, profile=False), "present"),
    ("a thin profile counts as none", LS, dict(LOGIN_STORM, profile_samples=10, resources=False), "insufficient-data"),
    ("neither CPU nor profile", LS, dict(LOGIN_STORM, profile=False, resources=False), "insufficient-data"),
    ("no k6", LS, dict(LOGIN_STORM, k6=False), "insufficient-data"),
    # retry-storm: queries/request ≥ 2 and timeouts/request ≥ 5 %
    ("retry storm", RS, RETRY_STORM, "present"),
    ("backoff fix: 1.11 per request, same timeouts", RS, dict(RETRY_STORM, qpr=1.11), "absent"),
    ("healthy: 1.55 per request, no timeouts", RS, dict(HEALTHY, qpr=1.55), "absent"),
    ("qpr just above", RS, dict(RETRY_STORM, qpr=RS.QPR_MIN * 1.01), "present"),
    ("qpr just below", RS, dict(RETRY_STORM, qpr=RS.QPR_MIN * 0.99), "absent"),
    ("timeouts just above", RS, dict(RETRY_STORM, timeouts_per_request=RS.TIMEOUT_RATE_MIN * 1.05), "present"),
    ("timeouts just below", RS, dict(RETRY_STORM, timeouts_per_request=RS.TIMEOUT_RATE_MIN * 0.95), "absent"),
    ("no counters, no pg snapshots", RS, dict(RETRY_STORM, vars=False, timeout_status_rate=0.3),
     "insufficient-data"),
    ("no counters, no timeouts seen by k6", RS, dict(RETRY_STORM, vars=False), "absent"),
    # pool-saturation: full in ≥ 50 % of samples and waiting p50 ≥ 1
    ("false idle's pool", PS, FALSE_IDLE, "present"),
    ("healthy", PS, HEALTHY, "absent"),
    ("full just over half the time", PS, dict(FALSE_IDLE, full_fraction=0.55), "present"),
    ("full just under half the time", PS, dict(FALSE_IDLE, full_fraction=0.45), "absent"),
    ("full but nobody waits", PS, dict(FALSE_IDLE, waiting=0.0), "absent"),
    ("one waiter", PS, dict(FALSE_IDLE, waiting=PS.WAITERS_MIN), "present"),
    ("no pool gauges", PS, dict(FALSE_IDLE, vars=False), "insufficient-data"),
    # lock-contention: any of block profile, pool waits, pg locks
    ("pool waits dominate in-flight", LC, FALSE_IDLE, "present"),
    ("healthy", LC, HEALTHY, "absent"),
    ("pool-wait share just above", LC, dict(HEALTHY, waiting=11.0, in_flight=20.0), "present"),
    ("pool-wait share just below", LC, dict(HEALTHY, waiting=9.0, in_flight=20.0), "absent"),
    ("block profile: a third in pool acquire", LC, dict(HEALTHY, vars=False, pg=False,
                                                       block=block_stacks(33, 0.1, 67)), "present"),
    ("block profile: a fifth in locks and pools", LC, dict(HEALTHY, vars=False, pg=False,
                                                          block=block_stacks(10, 10, 80)), "absent"),
    ("block profile: share high, seconds too few", LC, dict(HEALTHY, vars=False, pg=False,
                                                           block=block_stacks(0.3, 0.3, 0.4)), "absent"),
    ("pg: backends waiting on row locks", LC, dict(HEALTHY, pg_lock_share=0.34), "present"),
    ("pg: few lock waits", LC, dict(HEALTHY, pg_lock_share=0.0, pg_active=10), "absent"),
    ("no source at all", LC, dict(HEALTHY, vars=False, pg=False), "insufficient-data"),
    # memory-pressure: RSS growth ≥ 20 % and ≥ 16 MiB, heap growth, GC share ≥ 25 %
    ("healthy: RSS flat", MP, HEALTHY, "absent"),
    ("RSS grows 21 % of 200 MB", MP, dict(HEALTHY, rss_mb=200.0, rss_growth=0.21), "present"),
    ("RSS grows 19 % of 200 MB", MP, dict(HEALTHY, rss_mb=200.0, rss_growth=0.19), "absent"),
    ("RSS grows 30 % but only 15 MB", MP, dict(HEALTHY, rss_mb=50.0, rss_growth=0.3), "absent"),
    ("RSS grows 30 % = 18 MB", MP, dict(HEALTHY, rss_mb=60.0, rss_growth=0.3), "present"),
    ("GC share just above", MP, dict(HEALTHY, gc=MP.GC_SHARE_MIN + 0.01), "present"),
    ("GC share just below, RSS flat", MP, dict(HEALTHY, gc=MP.GC_SHARE_MIN - 0.01), "absent"),
    ("GC low but no RSS: cannot rule out a leak", MP, dict(HEALTHY, resources=False), "insufficient-data"),
    ("heap grows 2 → 40 MB", MP, dict(HEALTHY, resources=False, heap_mb=(2.0, 40.0)), "present"),
    ("heap flat", MP, dict(HEALTHY, resources=False, heap_mb=(40.0, 41.0)), "absent"),
    # loadgen-saturated: k6 CPU p50 ≥ 90 %
    ("k6 pinned", LG, dict(HEALTHY, k6_cpu=95.0), "present"),
    ("healthy", LG, HEALTHY, "absent"),
    ("login storm: dropped iterations, k6 idle", LG, LOGIN_STORM, "absent"),
    ("k6 CPU just above", LG, dict(HEALTHY, k6_cpu=LG.K6_CPU_MAX_PCT + 1), "present"),
    ("k6 CPU just below", LG, dict(HEALTHY, k6_cpu=LG.K6_CPU_MAX_PCT - 1), "absent"),
    ("no k6 CPU samples", LG, dict(LOGIN_STORM, resources=False), "insufficient-data"),
]


@pytest.mark.parametrize("case, module, params, expected", TABLE,
                         ids=[f"{m.NAME}: {c}" for c, m, _, _ in TABLE])
def test_decision_table(case: str, module: Any, params: dict[str, Any], expected: str) -> None:
    got = finding(module, synth(**params))
    assert got["verdict"] == expected, json.dumps(got, indent=1, default=str)
    ev = got["evidence"]
    if expected == "insufficient-data":
        assert ev["missing"], "an insufficient-data verdict names what is missing"
        assert got["recommendation"].startswith("not enough data to judge")
    else:
        assert ev["used"], "a verdict names the evidence it used"
    if expected == "present":
        assert got["recommendation"]


def test_every_signature_has_rows_for_each_verdict() -> None:
    seen = {(m.NAME, v) for _, m, _, v in TABLE}
    for name in signatures():
        for v in ("present", "absent", "insufficient-data"):
            assert (name, v) in seen, (name, v)


# -- what the evidence says ------------------------------------------------------------------

def test_evidence_reports_percentiles_and_mean_in_the_window() -> None:
    got = finding(false_idle, synth(**FALSE_IDLE))
    ev = got["evidence"]
    assert ev["p95_ms"] == pytest.approx(2500.0, rel=1e-6)
    assert ev["service_cpu_p50"] == pytest.approx(10.0)
    assert ev["service_cpu_mean"] == pytest.approx(10.0, abs=2.0)  # 4 % steps around the level
    assert ev["pool_waiting_p50"] == pytest.approx(50.0)
    assert ev["window_start_s"] == pytest.approx(TRIM_FRACTION * 20, abs=0.1)
    assert ev["window_end_s"] == pytest.approx((1 - TRIM_FRACTION) * 20, abs=0.1)
    assert ev["pg_idle_in_transaction_p50"] == 0.0
    assert got["recommendation"].startswith("50 requests wait for a database connection (median) while the "
                                            "service uses 10 % of a core")
    assert "batch writes (buffer + COPY / multi-row INSERT)" in got["recommendation"]


def test_login_storm_cites_the_hashing_share_and_frame() -> None:
    got = finding(login_storm, synth(**LOGIN_STORM))
    assert got["evidence"]["hashing_share"] == 0.99
    assert got["evidence"]["top_hashing_frame"] == "bcrypt.checkpw"
    assert got["evidence"]["dropped_iterations_in_window"] == 30
    assert got["evidence"]["hashing_algorithm"] == "bcrypt"  # named from the profile's functions
    rho = got["evidence"]["cpu_p95_correlation"]
    assert rho < login_storm.FOLLOWS_MIN_RHO and got["evidence"]["latency_follows_cpu"] is False
    assert got["recommendation"].startswith("bcrypt hashing is 99% of CPU (bcrypt.checkpw), the service uses 190 % "
                                            "of a core, p95 is 6000 ms, latency does not follow CPU second by second "
                                            f"(rank correlation {rho:+.2f}): lower the bcrypt cost within policy "
                                            "(each step doubles the work: 12 → 10 is 4× cheaper)")


def _latency_tied_to_cpu(data: RunData, sign: float) -> RunData:
    """Each request's latency a function of its second's service CPU: rising with it (sign 1)
    or falling (sign -1), around 6 s."""
    cpu = (data.resources.filter(pl.col("role") == "service")
           .group_by(pl.col("t_s").floor().alias("sec")).agg(pl.col("cpu_pct").mean()))
    centre = float(cpu["cpu_pct"].mean())  # type: ignore[arg-type]
    data.requests = (data.requests.with_columns(pl.col("t_s").floor().alias("sec")).join(cpu, on="sec", how="left")
                     .with_columns((6000.0 + sign * 100.0 * (pl.col("cpu_pct") - centre)).alias("duration_ms"))
                     .select(data.requests.columns))
    return data


@pytest.mark.parametrize("sign, follows", [(1.0, True), (-1.0, False)])
def test_latency_follows_cpu_only_with_a_positive_correlation(sign: float, follows: bool) -> None:
    got = finding(login_storm, _latency_tied_to_cpu(synth(**LOGIN_STORM), sign))
    ev = got["evidence"]
    assert got["verdict"] == "present"
    assert ev["cpu_p95_correlation"] == pytest.approx(sign, abs=0.2)
    assert ev["latency_follows_cpu"] is follows
    said = "latency follows CPU second by second" in got["recommendation"]
    assert said is follows
    assert ("latency does not follow CPU" in got["recommendation"]) is not follows
    assert "following" not in login_storm.SUMMARY


def test_login_storm_without_cpu_samples_says_what_it_used() -> None:
    got = finding(login_storm, synth(**dict(LOGIN_STORM, resources=False)))
    ev = got["evidence"]
    assert "service_cpu_p50" not in ev
    assert CPU_MISSING in ev["missing"]
    assert any("hot-frame share and the latency" in c for c in ev["caveats"])
    assert any(u.startswith("CPU profile service.cpu.pb.gz") for u in ev["used"])


def test_login_storm_on_a_saturated_machine_says_so() -> None:
    # Measured on the shared machine: other tests held the cores, the service got 64 %.
    got = finding(login_storm, synth(**dict(LOGIN_STORM, service_cpu=64.0, host_cpu=200.0)))
    assert got["verdict"] == "absent"
    assert any(c.startswith("the machine was saturated (host CPU p50 200 % of 2 cores) while the service got "
                            "64 %") for c in got["evidence"]["caveats"])
    quiet = finding(login_storm, synth(**dict(LOGIN_STORM, service_cpu=64.0, host_cpu=100.0)))
    assert "caveats" not in quiet["evidence"]


def test_loadgen_tells_a_slow_target_from_a_busy_k6() -> None:
    slow_target = finding(loadgen_saturated, synth(**LOGIN_STORM))
    assert slow_target["verdict"] == "absent"
    ev = slow_target["evidence"]
    assert ev["dropped_iterations"] == 30 and ev["vus_busy"] is True
    assert ev["vus_busy_share_at_drops"] == round(41 / 43, 3)
    assert ev["k6_cpu_p50"] == pytest.approx(4.0)
    assert any("every VU was busy waiting on a slow target" in c for c in ev["caveats"])
    assert any("machine was saturated" in c for c in ev["caveats"])  # host at 200 % of 2 cores
    assert "raise maxVUs" in slow_target["recommendation"]
    busy_k6 = finding(loadgen_saturated, synth(**dict(HEALTHY, k6_cpu=95.0, dropped=5)))
    assert busy_k6["verdict"] == "present"
    assert busy_k6["evidence"]["vus_busy"] is False and busy_k6["evidence"]["vus_busy_share_at_drops"] == 0.05
    assert any("k6 could not start them on time" in c for c in busy_k6["evidence"]["caveats"])
    assert "cannot be trusted" in busy_k6["recommendation"]


def test_vus_busy_is_judged_at_the_drops_not_at_the_peak_reading() -> None:
    # A CI run of the login storm: 18 drops while k6 grew its VUs, each with (nearly) all busy,
    # yet the once-a-second peak of vus (44) missed 0.9 × the final vus_max (50).
    rows = [(float(t), "vus", v) for t, v in enumerate([10, 14, 18, 21, 24, 28, 33, 38, 44, 40, 36], 1)]
    rows += [(float(t), "vus_max", m) for t, m in enumerate([10, 14, 18, 22, 25, 29, 34, 39, 50, 50, 50], 1)]
    rows += [(t + 0.3, "dropped_iterations", 1.0) for t in range(1, 9) for _ in range(2)]
    rows += [(t + 0.6, "dropped_iterations", 1.0) for t in (1, 2)]
    data = RunData(run_id="ci", cpu_count=2)
    data.k6 = pl.DataFrame(rows, schema=rundata.K6_SCHEMA, orient="row").sort("t_s")
    drops = data.k6.filter(pl.col("metric") == "dropped_iterations")
    share = loadgen_saturated.busy_share_at_drops(data.k6, drops)
    # 18 readings: 8 at 1 (10/10, 14/14, 18/18) and two each at 21/22 … 38/39: the median is 38/39.
    assert share == pytest.approx(38 / 39)
    assert 44 < 0.9 * 50  # the old peak rule said "not busy" here
    ev = Evidence(None)
    loadgen_saturated.dropped(data, None, ev)
    assert ev.values["vus_busy"] is True and ev.values["dropped_iterations"] == 18


def test_vus_busy_reads_both_readings_around_a_drop() -> None:
    # A login storm measured here: k6 read 21 of 29 VUs busy at 9 s and 28 of 29 at 10 s, with
    # drops between; the reading before alone puts the median under 0.9.
    rows = [(9.0, "vus", 21.0), (9.0, "vus_max", 29.0), (10.0, "vus", 28.0), (10.0, "vus_max", 29.0)]
    rows += [(9.0 + d, "dropped_iterations", 1.0) for d in (0.1, 0.3, 0.5, 0.7)]
    k6 = pl.DataFrame(rows, schema=rundata.K6_SCHEMA, orient="row").sort("t_s")
    drops = k6.filter(pl.col("metric") == "dropped_iterations")
    assert loadgen_saturated.busy_share_at_drops(k6, drops) == pytest.approx(28 / 29)
    # A busy k6 that leaves its VUs idle on both sides still reads idle.
    idle = k6.with_columns(pl.when(pl.col("metric") == "vus").then(3.0).otherwise(pl.col("value")).alias("value"))
    assert loadgen_saturated.busy_share_at_drops(idle, drops) == pytest.approx(3 / 29)


def test_retry_storm_from_k6_and_pg_when_the_service_has_no_counters() -> None:
    data = synth(**dict(RETRY_STORM, vars=False, timeout_status_rate=0.3))
    data.pg_statement_calls = 2.6 * data.requests.height
    got = finding(retry_storm, data)
    assert got["verdict"] == "present"
    assert got["evidence"]["pg_queries_per_request"] == pytest.approx(2.6)
    assert got["evidence"]["k6_timeout_rate"] == pytest.approx(0.3, abs=0.05)
    assert any("lower bound" in c for c in got["evidence"]["caveats"])
    # A lower bound under the threshold proves nothing: unknown, not absent.
    data.pg_statement_calls = 1.0 * data.requests.height
    assert finding(retry_storm, data)["verdict"] == "insufficient-data"


def test_block_profile_names_the_pool_and_the_lock_sites() -> None:
    got = finding(lock_contention, synth(**dict(HEALTHY, vars=False, pg=False, block=block_stacks(33, 0.1, 67))))
    ev = got["evidence"]
    assert ev["profile_pool_wait_share"] == pytest.approx(33 / 100.1, rel=1e-3)
    assert ev["profile_lock_share"] == pytest.approx(0.1 / 100.1, rel=1e-3)
    assert ev["top_pool_wait_site"] == "main.(*dbPool).acquire"
    assert ev["top_lock_site"] == "main.(*cache).get"
    assert "most at main.(*dbPool).acquire" in got["recommendation"]


def test_false_idle_counts_waiters_from_a_timed_block_profile() -> None:
    # 10 s of a delta block profile holding 600 s of pool-acquire delay: 60 goroutines waited on average.
    data = synth(**dict(FALSE_IDLE, vars=False, block=block_stacks(600, 1, 50)))
    data.profiles[-1] = replace(data.profiles[-1], duration_s=10.0)
    got = finding(false_idle, data)
    assert got["verdict"] == "present"
    assert got["evidence"]["waiting_from_block_profile"] == pytest.approx(60.0)


def test_a_run_without_any_data_is_insufficient_everywhere() -> None:
    result = to_jsonable(diagnose_data(RunData(run_id="empty")))
    assert result["run_id"] == "empty"
    assert [f["signature"] for f in result["findings"]] == list(signatures())
    assert {f["verdict"] for f in result["findings"]} == {"insufficient-data"}
    assert all(f["evidence"]["missing"] for f in result["findings"])


def test_diagnose_is_deterministic_and_json_clean() -> None:
    a = json.dumps(to_jsonable(diagnose_data(synth(**FALSE_IDLE))), sort_keys=True, allow_nan=False)
    b = json.dumps(to_jsonable(diagnose_data(synth(**FALSE_IDLE))), sort_keys=True, allow_nan=False)
    assert a == b


# -- the steady window -----------------------------------------------------------------------

def test_window_trims_both_ends_of_a_steady_rate() -> None:
    t = pl.Series(T0 + np.arange(400) / 20.0)  # 20/s for 20 s
    w = find_window(t)
    assert w is not None
    assert w.start_s - T0 == pytest.approx(TRIM_FRACTION * 19.95)
    assert w.end_s - T0 == pytest.approx((1 - TRIM_FRACTION) * 19.95)
    assert "first and last 15% of the span dropped" in w.method


def test_window_skips_a_long_ramp_up() -> None:
    # 2/s for the first 8 s, then 20/s for 22 s: the trim (4.5 s) alone would keep the ramp.
    t = pl.Series(np.concatenate([T0 + np.arange(16) / 2.0, T0 + 8 + np.arange(440) / 20.0]))
    w = find_window(t)
    assert w is not None
    assert w.start_s - T0 == pytest.approx(8.0, abs=1.0)
    assert "narrowed" in w.method


def test_window_refinement_keeps_at_least_half_of_the_trim() -> None:
    # A rate that halves every 5 s never settles; the window still spans half the trim or more.
    t = pl.Series(np.concatenate([T0 + 5 * k + np.arange(5 * 2 ** (5 - k)) / 2 ** (5 - k) for k in range(6)]))
    w = find_window(t)
    assert w is not None
    span = float(t.max() - t.min())  # type: ignore[operator]
    assert w.start_s - T0 == pytest.approx(TRIM_FRACTION * span)
    assert w.duration_s >= 0.5 * (1 - 2 * TRIM_FRACTION) * span - 1.0
    assert w.duration_s < (1 - 2 * TRIM_FRACTION) * span


def test_window_falls_back_to_the_resource_samples_and_to_none() -> None:
    w = find_window(pl.Series([], dtype=pl.Float64), pl.Series(T0 + np.arange(40) / 4.0))
    assert w is not None and w.method.startswith("resource/vars samples (no k6 data)")
    assert find_window(pl.Series([], dtype=pl.Float64), None) is None
    assert find_window(pl.Series([T0, T0]), None) is None


def test_a_short_run_has_too_few_samples_for_cpu() -> None:
    data = synth(**dict(FALSE_IDLE, seconds=2.0, rps=200.0))  # 8 samples, ~5 in the window
    got = finding(false_idle, data)
    assert got["verdict"] == "insufficient-data"
    assert any(m.startswith(f"at least {MIN_SAMPLES} service CPU samples") for m in got["evidence"]["missing"])
    assert got["evidence"]["requests"] >= MIN_REQUESTS


# -- the logic and the frame classes -----------------------------------------------------------

@pytest.mark.parametrize("conds, expected_all, expected_any", [
    ((True, True), True, True), ((True, None), None, True), ((False, None), False, False),
    ((None, None), None, None), ((True, False), False, True),
])
def test_kleene_logic(conds: tuple[Any, ...], expected_all: Any, expected_any: Any) -> None:
    assert all_of(*conds) is expected_all
    assert any_of(*conds) is expected_any


def test_frames_tell_locks_pools_and_other_waits_apart() -> None:
    stacks = pl.DataFrame({"frames": [
        ["sync.(*RWMutex).RLock", "main.(*sessionStore).touch"],
        ["sync.(*Mutex).Unlock", "main.janitor"],
        ["runtime.chanrecv1", "database/sql.(*DB).conn", "database/sql.(*DB).query"],
        ["runtime.selectgo", "main.callInventory"],
        ["sync.(*WaitGroup).Wait", "main.fetchAll"],
        ["sync.(*Pool).Get", "main.buf"],
    ], "value": [1, 2, 4, 8, 16, 32]}, schema=rundata.STACKS_SCHEMA)
    c = _frames.classify(stacks)
    assert c["what"].to_list() == ["lock", "lock", "pool", "other", "other", "other"]
    assert c["site"].to_list()[:3] == ["main.(*sessionStore).touch", "main.janitor", "database/sql.(*DB).conn"]
    assert _frames.shares(stacks) == {"total": 63.0, "lock": 3.0, "pool": 4.0, "other": 56.0}


# -- a user-brought group, through the CLI ------------------------------------------------------

USER_FILES = [
    FIXTURES / "k6" / "main_small.ndjson",
    FIXTURES / "pprof" / "generated" / "small_loginstorm.cpu.pb.gz",
    FIXTURES / "pprof" / "generated" / "small_falseidle.block.pb.gz",
    FIXTURES / "pg" / "pg_stat_statements_before.csv",
    FIXTURES / "pg" / "pg_stat_statements_after.csv",
]


@pytest.fixture(scope="module")
def user_group(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("doctor") / "store.duckdb"
    r = run_cli("ingest", "--run", "mygroup", *map(str, USER_FILES), store=store)
    assert r.returncode == 0, r.stderr
    return store


def test_user_group_gets_a_verdict_for_every_signature(user_group: Path) -> None:
    r = run_cli("doctor", "mygroup", "--json", store=user_group)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out) == {"run_id", "findings"} and out["run_id"] == "mygroup"
    by = {f["signature"]: f for f in out["findings"]}
    assert list(by) == list(signatures())
    for f in out["findings"]:
        assert set(f) == {"signature", "verdict", "evidence", "recommendation"}
        assert f["verdict"] in ("present", "absent", "insufficient-data")
    verdicts = {k: f["verdict"] for k, f in by.items()}
    assert verdicts == {
        # p95 56 ms in the steady window: nothing is slow enough for false idle or a login storm.
        "false-idle": "absent", "login-storm": "absent",
        # 2 of 111 requests timed out (k6 error 1050): far from a storm.
        "retry-storm": "absent",
        # no pool gauges, no RSS, no k6 CPU: cannot be judged from these files.
        "pool-saturation": "insufficient-data", "memory-pressure": "insufficient-data",
        "loadgen-saturated": "insufficient-data",
        # the block profile: 33 % of blocked time in main.(*dbPool).acquire.
        "lock-contention": "present",
    }
    ls = by["login-storm"]["evidence"]
    # With no resource samples, login-storm uses the CPU profile: its hashing share and its own rate.
    assert ls["hashing_share"] == pytest.approx(0.9442, abs=1e-4)
    assert ls["top_hashing_frame"] == "crypto/sha256.block"
    assert ls["service_cpu_from_profile_pct"] == pytest.approx(100 * 2.15 / 2.253940193, abs=1e-3)
    assert CPU_MISSING in ls["missing"]
    assert ls["p95_ms"] < 100
    lc = by["lock-contention"]["evidence"]
    assert lc["profile_pool_wait_share"] == pytest.approx(51891902597 / 156371337836, abs=1e-4)
    assert lc["profile_lock_wait_s"] == pytest.approx((51891902597 + 143214149) / 1e9, abs=1e-3)
    assert lc["top_pool_wait_site"] == "main.(*dbPool).acquire"
    assert any("small_falseidle.block.pb.gz" in u for u in lc["used"])
    rs = by["retry-storm"]["evidence"]
    assert rs["pg_queries_per_request"] == pytest.approx(83135 / 153, abs=1e-3)
    assert rs["k6_timeout_rate"] < retry_storm.TIMEOUT_RATE_MIN
    assert "the service's RSS (resource samples, or an rss_bytes role such as process_resident_memory_bytes)" \
        in by["memory-pressure"]["evidence"]["missing"]
    assert "resource samples (k6 cpu_pct)" in by["loadgen-saturated"]["evidence"]["missing"]
    assert by["pool-saturation"]["recommendation"].startswith("not enough data to judge (missing: ")


def test_doctor_prints_one_block_per_finding(user_group: Path) -> None:
    r = run_cli("doctor", "mygroup", store=user_group)
    assert r.returncode == 0, r.stderr
    text = r.stdout
    assert text.startswith("run mygroup\nsteady window 1.5–8.7 s of 10.3 s (k6 requests: ")
    blocks = text.split("\n\n")[1:]
    assert [b.split()[0] for b in blocks] == list(signatures())
    lock = next(b for b in blocks if b.startswith("lock-contention"))
    assert lock.splitlines()[0].split() == ["lock-contention", "PRESENT"]
    assert "profile_lock_wait_share 33.3 %" in lock  # 3 significant digits (fmt.sig)
    assert "top_pool_wait_site main.(*dbPool).acquire" in lock
    assert "\n  → 33% of blocked time is on locks and pool checkouts (most at main.(*dbPool).acquire)" in lock
    pool = next(b for b in blocks if b.startswith("pool-saturation"))
    assert pool.splitlines()[0].split() == ["pool-saturation", "insufficient", "data"]
    assert ("\n  missing: a metric for the pool_in_use role (e.g. go_sql_in_use_connections, "
            'db_client_connections_usage{state="used"}, or map one: --role pool_in_use=METRIC)') in pool


def test_doctor_on_an_unknown_run_is_one_line_and_exit_2(user_group: Path) -> None:
    r = run_cli("doctor", "no-such-run", store=user_group)
    assert r.returncode == 2
    assert r.stderr.startswith("perflab: no run 'no-such-run' in ") and r.stderr.count("\n") == 1
    assert "Traceback" not in r.stderr
