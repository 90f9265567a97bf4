"""memory-pressure: does the service's memory keep growing, or does collecting it eat the CPU?

    RSS       ▁▂▂▃▃▄▄▅▅▆▆▇▇█      grows across the steady window (a leak, an unbounded cache/queue)
    heap      2 MB ········ 9 MB   inuse_space of two heap profiles, first and last
    CPU       ▓▓▓ gc 30 %          allocation and collection frames in the CPU profile

Three pieces of evidence, each judged when present:

* RSS growth: the service's median RSS in the last quarter of the window against the
  first quarter, ≥ RSS_GROWTH_MIN and ≥ RSS_GROWTH_MIN_BYTES;
* heap growth: inuse_space of the last heap profile against the first (by time),
  ≥ HEAP_GROWTH_MIN and ≥ RSS_GROWTH_MIN_BYTES (needs two heap profiles);
* GC share: the "gc" category (allocation + collection) of the CPU profile ≥ GC_SHARE_MIN.

Present if any holds. Absent needs the RSS or heap series (a low GC share alone cannot
rule out a leak that has not yet made the collector busy). Otherwise insufficient-data.
"""

from __future__ import annotations

import polars as pl

from perflab.analysis.roles import gauge_levels
from perflab.analysis.rundata import RunData
from perflab.analysis.signatures._measure import (
    MIN_PROFILE_SAMPLES,
    MIN_SAMPLES,
    Evidence,
    Finding,
    Tri,
    any_of,
    cpu_profile,
    finding,
    missing_recommendation,
    role_used,
)
from perflab.analysis.steady import Window

NAME = "memory-pressure"
SUMMARY = "memory grows over the steady state, or garbage collection takes a large share of the CPU"

# A fifth more memory within one steady window: a 15–30 s lab window is far too short for
# caches to warm that much; the lab's service held 69–73 MB flat in every scenario.
RSS_GROWTH_MIN = 0.2
# And at least 16 MiB: allocator arenas and thread stacks of a small process move by a few
# MiB, which would be a large fraction of nothing.
RSS_GROWTH_MIN_BYTES = 16 * 2**20
# As for RSS, between the first and the last heap profile.
HEAP_GROWTH_MIN = 0.2
# Go's collector budgets 25 % of the CPU while it marks; a profile that spends more than
# that in allocation and collection is working for its memory, not its requests.
GC_SHARE_MIN = 0.25
# The quarter of the window at each end whose medians are compared.
RSS_EDGE_FRACTION = 0.25

# How an insufficient-data verdict says to get the data.
HOW_TO_COLLECT = ("needs the service's RSS over the run (`perflab run` samples it) or two heap profiles "
                  "taken minutes apart (Go: /debug/pprof/heap)")

KEY_EVIDENCE = ("rss_start_bytes", "rss_end_bytes", "rss_growth", "heap_growth", "gc_share", "top_gc_frame")


def rss_growth(data: RunData, window: Window | None, ev: Evidence) -> Tri:
    rows = data.resources.filter((pl.col("role") == "service") & pl.col("rss_bytes").is_not_null())
    used = "resource samples: service rss_bytes"
    if rows.is_empty():
        rows = gauge_levels(data.signals, "rss_bytes").rename({"value": "rss_bytes"})
        used = role_used(data, "rss_bytes", "gauge")
    if rows.is_empty() or window is None:
        ev.miss("the service's RSS (resource samples, or an rss_bytes role such as process_resident_memory_bytes)")
        return None
    rss = window.filter(rows).sort("t_s")
    if rss.height < MIN_SAMPLES:
        ev.miss(f"at least {MIN_SAMPLES} RSS samples in the steady window (have {rss.height})")
        return None
    edge = RSS_EDGE_FRACTION * window.duration_s
    start = float(rss.filter(pl.col("t_s") <= window.start_s + edge)["rss_bytes"].median())  # type: ignore[arg-type]
    end = float(rss.filter(pl.col("t_s") >= window.end_s - edge)["rss_bytes"].median())  # type: ignore[arg-type]
    growth = (end - start) / start if start > 0 else 0.0
    ev.add(rss_start_bytes=start, rss_end_bytes=end, rss_growth=growth, rss_growth_bytes=end - start)
    ev.use(f"{used} ({rss.height} in the steady window)")
    return growth >= RSS_GROWTH_MIN and end - start >= RSS_GROWTH_MIN_BYTES


def heap_growth(data: RunData, ev: Evidence) -> Tri:
    heaps = sorted((p for p in data.profiles if p.kind == "heap"),
                   key=lambda p: (p.time_s is None, p.time_s or 0.0, p.source_id))
    if len(heaps) < 2:
        ev.miss("two heap profiles (inuse_space) to compare" if not heaps else
                "a second heap profile (one shows what is held, two show what grows)")
        return None
    first, last = heaps[0], heaps[-1]
    growth = (last.total - first.total) / first.total if first.total > 0 else 0.0
    ev.add(heap_start_bytes=first.total, heap_end_bytes=last.total, heap_growth=growth)
    ev.use(f"heap profiles {first.name} → {last.name} ({first.sample_type})")
    return growth >= HEAP_GROWTH_MIN and last.total - first.total >= RSS_GROWTH_MIN_BYTES


def gc_share(data: RunData, ev: Evidence) -> Tri:
    prof = cpu_profile(data)
    if prof is None or prof.categories is None or prof.samples < MIN_PROFILE_SAMPLES:
        ev.miss("a CPU profile with hot-frame categories (GC share)")
        return None
    share = float(prof.categories.get("categories", {}).get("gc", 0.0))
    ev.add(gc_share=share)
    tops = prof.categories.get("top_frames", {}).get("gc") or []
    if tops:
        ev.add(top_gc_frame=tops[0]["name"])
    ev.use(f"CPU profile {prof.name}: gc category")
    return share >= GC_SHARE_MIN


def judge(data: RunData, window: Window | None) -> Finding:
    ev = Evidence(window)
    rss = rss_growth(data, window, ev)
    heap = heap_growth(data, ev)
    gc = gc_share(data, ev)
    if any_of(rss, heap, gc) is True:
        cond: Tri = True
    elif rss is False or heap is False:
        cond = False
    else:
        cond = None
    if cond is True:
        parts = []
        if rss:
            parts.append(f"RSS grew {ev.values['rss_growth']:.0%} over the steady window")
        if heap:
            parts.append(f"the heap grew {ev.values['heap_growth']:.0%} between heap profiles")
        if gc:
            parts.append(f"allocation and GC take {ev.values['gc_share']:.0%} of CPU")
        rec = (", ".join(parts) + ": compare two heap profiles (inuse_space) minutes apart to find what "
               "keeps growing; bound caches, queues and buffers; cut allocations in the hot path "
               "(reuse buffers, avoid per-request copies); in Go set GOMEMLIMIT and raise GOGC if "
               "memory allows")
    elif cond is None:
        rec = missing_recommendation(ev, HOW_TO_COLLECT)
    else:
        rec = None
    return finding(NAME, cond, ev, rec)
