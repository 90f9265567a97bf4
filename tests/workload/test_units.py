"""The sample service's pieces that need no server: the pprof writer, the sampler, the
retry budget and circuit breaker, settings and record validation."""

from __future__ import annotations

import gzip
import random
import threading
import time
from collections import Counter

import pytest

from perflab.ingest import pprof_proto
from sample_workload.dependency import CircuitBreaker, RetryBudget, backoff_delay_s
from sample_workload.pprof import Frame, ProfileBuilder, _varint
from sample_workload.profiling import sample_cpu
from sample_workload.records import parse_record
from sample_workload.settings import Settings, SettingsError, mask_password


def _decode(data: bytes) -> pprof_proto.Profile:
    p = pprof_proto.Profile()
    p.ParseFromString(data)
    return p


def test_varint_matches_protobuf_wire_format() -> None:
    assert _varint(0) == b"\x00"
    assert _varint(1) == b"\x01"
    assert _varint(300) == b"\xac\x02"
    assert _varint(-1) == b"\xff" * 9 + b"\x01"  # int64 -1: ten bytes, two's complement


def test_profile_builder_round_trips_through_a_protobuf_decoder() -> None:
    a = Frame("pkg.mod.leaf", "/src/pkg/mod.py", 10, 12)
    b = Frame("pkg.mod.caller", "/src/pkg/mod.py", 20, 25)
    b2 = Frame("pkg.mod.caller", "/src/pkg/mod.py", 20, 26)  # same function, another line
    prof = ProfileBuilder(sample_types=[("samples", "count"), ("cpu", "nanoseconds")],
                          period_type=("cpu", "nanoseconds"), period=10_000_000,
                          time_nanos=1_700_000_000_000_000_000, duration_nanos=2_000_000_000)
    prof.add([a, b], [1, 10_000_000])
    prof.add([a, b], [2, 20_000_000])  # merged with the first
    prof.add([b2], [1, -5])  # negative values survive

    p = _decode(gzip.decompress(prof.encode_gzip()))
    st = list(p.string_table)
    assert st[0] == ""
    assert [(st[t.type], st[t.unit]) for t in p.sample_type] == [("samples", "count"), ("cpu", "nanoseconds")]
    assert (st[p.period_type.type], st[p.period_type.unit], p.period) == ("cpu", "nanoseconds", 10_000_000)
    assert (p.time_nanos, p.duration_nanos) == (1_700_000_000_000_000_000, 2_000_000_000)
    funcs = {f.id: (st[f.name], st[f.filename], f.start_line) for f in p.function}
    assert sorted(funcs.values()) == [("pkg.mod.caller", "/src/pkg/mod.py", 20), ("pkg.mod.leaf", "/src/pkg/mod.py", 10)]
    locs = {loc.id: (funcs[loc.line[0].function_id][0], loc.line[0].line, loc.mapping_id) for loc in p.location}
    assert len(locs) == 3 and all(m == 1 for _, _, m in locs.values())
    samples = sorted(([locs[i][:2] for i in s.location_id], list(s.value)) for s in p.sample)
    assert samples == [
        ([("pkg.mod.caller", 26)], [1, -5]),
        ([("pkg.mod.leaf", 12), ("pkg.mod.caller", 25)], [3, 30_000_000]),
    ]
    assert len(p.mapping) == 1 and p.mapping[0].has_functions


def _spin(stop: threading.Event) -> None:
    x = 0
    while not stop.is_set():
        x += sum(i * i for i in range(200))


def test_sampler_keeps_running_threads_and_skips_waiting_ones() -> None:
    stop = threading.Event()
    busy = threading.Thread(target=_spin, args=(stop,), name="busy")
    idle = threading.Thread(target=stop.wait, name="idle")  # blocked in threading.Condition.wait
    busy.start()
    idle.start()
    try:
        t0 = time.thread_time_ns()
        prof = sample_cpu(0.5, hz=100)
    finally:
        stop.set()
        busy.join()
        idle.join()
    assert time.thread_time_ns() - t0 < 0.5e9  # the sampling ran elsewhere
    p = _decode(prof.encode())
    st = list(p.string_table)
    funcs = {f.id: st[f.name] for f in p.function}
    locs = {loc.id: funcs[loc.line[0].function_id] for loc in p.location}
    leaf: Counter[str] = Counter()
    names: set[str] = set()
    for s in p.sample:
        leaf[locs[s.location_id[0]]] += s.value[1]
        names.update(locs[i] for i in s.location_id)
    hottest = leaf.most_common(1)[0][0]
    assert hottest in (f"{__name__}._spin", f"{__name__}._spin.<locals>.<genexpr>")
    assert f"{__name__}._spin" in names
    # the idle thread never shows: its innermost frame is a wait, and its CPU clock stands still
    assert "threading.Condition.wait" not in leaf and "threading.Event.wait" not in names
    # one busy thread for 0.5 s: about 0.5 s of CPU (a sample is worth the thread's CPU since the last tick)
    total = sum(s.value[1] for s in p.sample)
    assert 0.25e9 < total < 0.65e9
    assert 0.45e9 < p.duration_nanos < 1.0e9


def test_retry_budget_allows_about_ratio_retries() -> None:
    budget = RetryBudget(ratio=0.1, max_tokens=10, initial=0)
    allowed = 0
    for _ in range(1000):
        budget.on_request()
        allowed += budget.try_spend()  # every request wants a retry: the storm case
    assert allowed == 100
    full = RetryBudget(ratio=0.1, max_tokens=3, initial=50)
    assert full.tokens == 3  # capped: no burst larger than max_tokens


def test_circuit_breaker_opens_cools_down_and_half_opens() -> None:
    now = [0.0]
    br = CircuitBreaker(threshold=3, cooldown_s=5.0, clock=lambda: now[0])
    for _ in range(2):
        br.record_timeout()
    assert br.allow() and br.state == "closed"
    br.record_success()  # success resets the streak
    for _ in range(3):
        br.record_timeout()
    assert br.state == "open" and br.opened == 1 and not br.allow()
    now[0] = 4.9
    assert not br.allow()
    now[0] = 5.0
    assert br.allow() and br.state == "half_open"
    assert not br.allow()  # one trial at a time
    br.record_timeout()  # the trial failed: open again at once
    assert br.state == "open" and br.opened == 2
    now[0] = 10.0
    assert br.allow()
    br.record_success()
    assert br.state == "closed" and br.allow() and br.allow()


def test_backoff_delay_is_full_jitter_within_an_exponential_cap() -> None:
    rng = random.Random(1)
    for attempt, cap_ms in ((1, 25), (2, 50), (3, 100), (10, 1000)):
        delays = [backoff_delay_s(attempt, 25, 1000, rng) for _ in range(500)]
        assert 0 <= min(delays) and max(delays) <= cap_ms / 1000
        assert max(delays) > 0.8 * cap_ms / 1000  # spread over the whole window


def test_settings_from_env_parse_validate_and_force_loopback() -> None:
    s = Settings.from_env({"POOL_SIZE": "2", "WRITE_MODE": "Batch", "FLUSH_INTERVAL_S": "0.5", "SEED": "1",
                           "HOST": "0.0.0.0", "DATABASE_URL": "postgresql+psycopg://u:secret@127.0.0.1:5/db"})
    assert (s.pool_size, s.write_mode, s.flush_interval_s, s.seed, s.host) == (2, "batch", 0.5, True, "127.0.0.1")
    assert s.public()["database_url"] == "postgresql+psycopg://u:***@127.0.0.1:5/db"
    assert Settings.from_env({}) == Settings()
    for env, message in (
        ({"POOL_SIZE": "two"}, "POOL_SIZE='two': not an int"),
        ({"BCRYPT_COST": "3"}, "BCRYPT_COST=3: bcrypt accepts 4 to 31"),
        ({"RETRY_POLICY": "often"}, "RETRY_POLICY='often': one of none, immediate, backoff"),
        ({"HEAVY_FRACTION": "1.5"}, "HEAVY_FRACTION=1.5: a fraction from 0 to 1"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL='mysql://x': must be a postgresql+psycopg:// or "
                                        "sqlite+aiosqlite:/// URL"),
    ):
        with pytest.raises(SettingsError) as e:
            Settings.from_env(env)
        assert str(e.value) == message
    assert mask_password("sqlite+aiosqlite:///x.db") == "sqlite+aiosqlite:///x.db"


def test_parse_record_validates_and_stamps() -> None:
    row = parse_record({"user_id": 3, "challenge_id": 2, "score": -5})
    assert (row["user_id"], row["challenge_id"], row["score"], row["duration_ms"], row["level"]) == (3, 2, -5, 0, 0)
    assert row["record_id"].version == 4 and row["accepted_at"].tzinfo is not None
    for bad, field in (({"challenge_id": 1, "score": 1}, "user_id"), ({"user_id": 0, "challenge_id": 1, "score": 1}, "user_id"),
                       ({"user_id": 1, "challenge_id": True, "score": 1}, "challenge_id"),
                       ({"user_id": 1, "challenge_id": 1, "score": 2**31}, "score"),
                       ({"user_id": 1, "challenge_id": 1, "score": 1, "duration_ms": -1}, "duration_ms")):
        with pytest.raises(ValueError, match=field):
            parse_record(bad)
