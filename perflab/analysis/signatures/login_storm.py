"""login-storm: is the service CPU-bound on hashing (or serialization), with latency high?

The CPU-bound picture: each login costs a bcrypt check (~240 ms of CPU at cost 12 here),
so the offered logins need more CPU than the machine has. CPU pins at the cores'
limit, requests queue behind it and latency climbs with the queue; k6 runs out of VUs
and drops iterations (which the latency numbers then leave out)::

    CPU %     ▆▇██████████████     ~195 % of one core on 2 cores
    p95       ▂▃▄▅▅▆▆▇▇▇██████     seconds, climbing while CPU stays pinned
    profile   hashing 99 %         sample_workload.auth.check_password (bcrypt, C code)

Present when p95 ≥ P95_MIN_MS and the CPU evidence agrees: the service's CPU p50 ≥
CPU_MIN_PCT and hashing or serialization ≥ HOT_SHARE_MIN of the CPU profile. Each of
the last two is judged when it is known; with only one of them (a user's k6 file and a
Go CPU profile, no resource samples) the verdict rests on that one and the evidence
says which was used. The latency-CPU rank correlation per second is reported beside
(not judged: at saturation CPU is flat while latency climbs, so it reads low or
negative); "latency follows CPU" is said only when it is at least FOLLOWS_MIN_RHO.
"""

from __future__ import annotations

import re

import polars as pl

from perflab.analysis.rundata import Profile, RunData
from perflab.analysis.signatures._measure import (
    MIN_PROFILE_SAMPLES,
    Evidence,
    Finding,
    all_of,
    at_least,
    cpu_profile,
    decided,
    finding,
    host_saturated,
    latency,
    missing_recommendation,
    service_cpu,
    spearman,
)
from perflab.analysis.steady import Window

NAME = "login-storm"
SUMMARY = "CPU-bound: service CPU pinned, latency high, hashing or serialization hot in the profile"

# 80 % of one core: bcrypt called on the event loop caps a Python service at one core
# (100 %), bcrypt in threads reaches both (195 %); the fixed cost-10 run measured 61–67 %,
# the healthy mix 35 %.
CPU_MIN_PCT = 80.0
# As for false idle: ten times the healthy p95 (33–38 ms); the login storm measured 5.5–6.5 s,
# its fix (cost 10) 64–87 ms.
P95_MIN_MS = 500.0
# A third of the CPU: below that, even free hashing would relieve a CPU-bound service by
# less than 1.5× (Amdahl), so hashing is not what makes it a storm.
HOT_SHARE_MIN = 0.3
# "Latency follows CPU" needs a clearly positive rank correlation of the per-second CPU and
# p95: over the 8–12 seconds of a 15 s run's steady window, unrelated series reach |ρ| of
# 0.3–0.5 (the 5 % critical value at 10 pairs is 0.65); the login storm measured −0.25.
FOLLOWS_MIN_RHO = 0.5
# The hot-frame categories (perflab.analysis.categories) that make a login storm.
HOT_CATEGORIES = ("hashing", "serialization")

# How an insufficient-data verdict says to get the data.
HOW_TO_COLLECT = ("ingest with --run a k6 NDJSON and a CPU profile of the service taken under the load "
                  "(Go: /debug/pprof/profile?seconds=30), or run it in the lab with `perflab run`")

KEY_EVIDENCE = ("service_cpu_p50", "service_cpu_mean", "service_cpu_from_profile_pct", "p95_ms", "requests",
                "dropped_iterations_in_window", "hashing_share", "hashing_algorithm", "top_hashing_frame",
                "serialization_share", "serialization_algorithm", "top_serialization_frame", "cpu_p95_correlation",
                "latency_follows_cpu")

# What each kind of hot work is, recognised by the function names the profile holds (with
# their cum share: a PBKDF2 loop sits a few frames above SHA-256's block function), and what
# to do about it. The first pattern with the most cum wins; the advice names what was found.
ALGORITHMS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "hashing": (
        (r"bcrypt|blowfish|eksblowfish", "bcrypt",
         "lower the bcrypt cost within policy (each step doubles the work: 12 → 10 is 4× cheaper)"),
        (r"pbkdf2|PKCS5_PBKDF2", "PBKDF2",
         "lower the PBKDF2 iteration count within policy (the work is linear in the iterations: a "
         "quarter of them is 4× cheaper)"),
        (r"scrypt", "scrypt", "lower scrypt's N within policy (work and memory are linear in N)"),
        (r"argon2", "Argon2", "lower Argon2's time cost or memory within policy"),
        (r"sha-?(256|512|1|384)|sha(256|512|1)|md5|blake2|hmac", "SHA/HMAC",
         "hash less often (a hash in a loop or per request: cache the result, or compare keys, not hashes)"),
    ),
    "serialization": (
        (r"protobuf|proto\.|\.Marshal|\.Unmarshal", "protobuf",
         "send less (fewer fields, paginate) or reuse encoded messages"),
        (r"msgpack", "MessagePack", "send less (fewer fields, paginate) or cache encoded responses"),
        (r"json|JSON", "JSON",
         "serialize less (paginate, drop unused fields, cache rendered responses) or use a faster encoder "
         "(orjson, a code-generated codec)"),
        (r"xml|XML", "XML", "serialize less, or move off XML on the hot path"),
        (r"pickle|marshal|yaml|gob", "object serialization", "serialize less, or cache the encoded form"),
    ),
}
# What every hashing hot spot can also do, whatever the algorithm.
HASHING_ALSO = "; reuse sessions or tokens (verify a password once, not per request) or offload the hashing"
UNKNOWN_WORK = ("profile the CPU (perflab run, or a Go CPU profile) to see what burns it; then cut that work, "
                "cache it or add cores")


def what_burns(prof: Profile | None, category: str) -> tuple[str, str] | None:
    """(what, advice) for a hot category, from the function names of the profile."""
    if prof is None:
        return None
    best: tuple[float, str, str] | None = None
    for pattern, what, advice in ALGORITHMS.get(category, ()):
        rx = re.compile(pattern, re.IGNORECASE)
        cum = max((share for name, share in prof.cum_shares if rx.search(name)), default=0.0)
        if cum > 0 and (best is None or cum > best[0]):
            best = (cum, what, advice)
    return (best[1], best[2]) if best else None


def hot_share(data: RunData, ev: Evidence) -> tuple[float | None, str | None]:
    """(share, category) of the hotter of hashing and serialization in the CPU profile."""
    prof = cpu_profile(data)
    if prof is None:
        ev.miss("a CPU profile of the service (hashing and serialization shares)")
        return None, None
    if prof.categories is None:
        ev.miss(f"hot-frame categories of {prof.name} (perflab.analysis.categories)")
        return None, None
    if prof.samples < MIN_PROFILE_SAMPLES:
        ev.add(profile_samples=prof.samples)
        ev.miss(f"at least {MIN_PROFILE_SAMPLES} samples in the CPU profile (have {prof.samples})")
        return None, None
    shares = prof.categories.get("categories", {})
    tops = prof.categories.get("top_frames", {})
    best: tuple[float, str] | None = None
    for cat in HOT_CATEGORIES:
        share = float(shares.get(cat, 0.0))
        ev.add(**{f"{cat}_share": share})
        if tops.get(cat):
            ev.add(**{f"top_{cat}_frame": tops[cat][0]["name"], f"top_{cat}_frame_share": tops[cat][0]["share"]})
        if best is None or share > best[0]:
            best = (share, cat)
    ev.add(profile_samples=prof.samples)
    ev.use(f"CPU profile {prof.name} (source {prof.source_id}): hot-frame categories")
    assert best is not None
    return best


def judge(data: RunData, window: Window | None) -> Finding:
    ev = Evidence(window)
    p95 = latency(data, window, ev)
    cpu = service_cpu(data, window, ev)
    share, cat = hot_share(data, ev)
    _context(data, window, ev)
    cpu_ok, hot_ok = at_least(cpu, CPU_MIN_PCT), at_least(share, HOT_SHARE_MIN)
    known = [c for c in (cpu_ok, hot_ok) if c is not None]
    core = all_of(*known) if known else None
    if cpu is None and share is not None:
        ev.caveat("the service's CPU is unknown: judged on the profile's hot-frame share and the latency")
    if share is None and cpu is not None:
        ev.caveat("no usable CPU profile: judged on CPU and latency; what burns the CPU is not shown")
    # A busy CPU (or a hot hashing/serialization share) is what a login storm is.
    cond = decided(at_least(p95, P95_MIN_MS), core)
    host = host_saturated(data, window)
    if host is not None and cpu is not None and cpu < CPU_MIN_PCT:
        # Not a verdict: other processes may have held the cores this service wanted.
        ev.caveat(f"the machine was saturated (host CPU p50 {host:.0f} % of {data.cpu_count} cores) while the "
                  f"service got {cpu:.0f} %: other processes competed for the CPU; re-run on a quiet machine")
    if cond is True:
        hot = cat if share is not None and share >= HOT_SHARE_MIN else None
        found = what_burns(cpu_profile(data), hot) if hot else None
        lead = []
        if hot is not None:
            frame = ev.values.get(f"top_{hot}_frame")
            name = f"{found[0]} {hot}" if found else hot
            lead.append(f"{name} is {share:.0%} of CPU" + (f" ({frame})" if frame else ""))
            if found:
                ev.add(**{f"{hot}_algorithm": found[0]})
        if cpu is not None:
            lead.append(f"the service uses {cpu:.0f} % of a core")
        lead.append(f"p95 is {p95:.0f} ms")
        follows = ev.values.get("latency_follows_cpu")
        if follows is not None:
            rho = ev.values["cpu_p95_correlation"]
            lead.append(f"latency {'follows' if follows else 'does not follow'} CPU second by second "
                        f"(rank correlation {rho:+.2f})")
        if found:
            advice = found[1] + (HASHING_ALSO if hot == "hashing" else "")
        elif hot is not None:
            advice = (f"cut the {hot} work the profile shows" + (HASHING_ALSO if hot == "hashing" else ""))
        else:
            advice = UNKNOWN_WORK
        rec = ", ".join(lead) + ": " + advice
    elif cond is None:
        rec = missing_recommendation(ev, HOW_TO_COLLECT)
    else:
        rec = None
    return finding(NAME, cond, ev, rec)


def _context(data: RunData, window: Window | None, ev: Evidence) -> None:
    """Dropped iterations (missing from the latency) and whether latency follows CPU."""
    if window is None:
        return
    if data.k6.height:
        dropped = window.filter(data.k6.filter(pl.col("metric") == "dropped_iterations"))["value"].sum()
        ev.add(dropped_iterations_in_window=float(dropped))
    if data.requests.is_empty() or data.resources.is_empty():
        return
    # Per second: service CPU mean and request p95, then their rank correlation.
    sec = pl.col("t_s").floor().alias("sec")
    cpu = (window.filter(data.resources.filter(pl.col("role") == "service"))
           .group_by(sec).agg(pl.col("cpu_pct").mean()))
    lat = window.filter(data.requests).group_by(sec).agg(
        pl.col("duration_ms").quantile(0.95, interpolation="linear").alias("p95"))
    both = cpu.join(lat, on="sec", how="inner")
    if both.height >= 3:
        rho = spearman(both["cpu_pct"], both["p95"])
        ev.add(cpu_p95_correlation=rho, cpu_p95_seconds=both.height)
        if rho is not None:
            ev.add(latency_follows_cpu=rho >= FOLLOWS_MIN_RHO)
