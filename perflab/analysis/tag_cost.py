"""A profile's value per label value (``go tool pprof -tags`` for one key), and the CPU a
request costs per endpoint: CPU by the label that names the route, over k6's requests.

Go code labels its samples with ``pprof.Do(ctx, pprof.Labels("route", r), ...)``; the
labels are stored per sample in pprof_labels. pprof's rule (its tags report): each
sample adds its value (of the chosen sample type, signed) to every value it carries for
the key, once per value; the key's total is the sum over its values, and percentages
are of the profile's total (the sum of |value| over all samples, as in -top). Only string
labels are read: numeric ones (bytes, counts) do not name an endpoint.

Per request: the CPU of each route value divided by the k6 requests (``http_reqs``
points) of the same endpoint. A request matches a value V through a k6 tag of the
label's own key (a script tagging ``route``), else through k6's ``name`` (the URL unless
the script names it): equal to V, or its path is V (``http://host:8080/login``,
``POST /login`` and ``GET /login?user={u}`` all match ``/login``). Requests are counted
over the profile's own window when the profile says when it ran and k6's points carry
times, since a lab's CPU profile covers part of the test only; else over the whole test.
"""

from __future__ import annotations

import os
import re
from typing import Any

from perflab.analysis.profiles import resolve_sample_type
from perflab.errors import PerflabError
from perflab.store import Store
from perflab.vocab import PPROF_SHAPED_KINDS

# Label keys that name an endpoint, in the order they are looked for.
ROUTE_KEYS = ("route", "endpoint", "handler", "http.route", "path")
# A CPU sample type's unit → milliseconds.
MS_PER_UNIT = {"nanoseconds": 1e-6, "microseconds": 1e-3, "milliseconds": 1.0, "seconds": 1e3}
# k6's `name`: an optional method, an optional scheme and host, the path, an optional query.
_NAME_PATH = re.compile(r"^(?:[A-Z]+\s+)?(?:[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#\s]*)?(?P<path>/[^?#\s]*)?")


def _pprof_sid(store: Store, ref: str | int | os.PathLike[str]) -> int:
    sid = store.find_source(ref, kinds=PPROF_SHAPED_KINDS)
    kind = store.source(sid)["kind"]
    if kind not in PPROF_SHAPED_KINDS:
        raise PerflabError(f"source {sid} is {kind}: labels are read from pprof profiles")
    return sid


def label_keys(store: Store, source_id: int) -> list[str]:
    """The keys of the profile's string labels, sorted."""
    rows = store.con.execute(
        "SELECT DISTINCT key FROM pprof_labels WHERE source_id = ? AND str IS NOT NULL ORDER BY key", [source_id]
    ).fetchall()
    return [k for (k,) in rows]


def route_key(store: Store, source_id: int) -> str | None:
    """The label key naming the endpoint (the first of ROUTE_KEYS the profile has), or None."""
    keys = set(label_keys(store, source_id))
    return next((k for k in ROUTE_KEYS if k in keys), None)


def tag_values(store: Store, ref: str | int | os.PathLike[str], key: str,
               sample_type: str | int | None = None) -> dict[str, Any]:
    """The profile's value per value of label ``key``, as ``go tool pprof -tags`` counts it.

    Returns {"source_id", "key", "sample_type", "unit", "total", "key_total", "unlabelled",
    "rows": [{"value", "amount", "pct"}]}: ``amount`` in the sample type's unit (exact ints),
    ``pct`` of ``total``; ``unlabelled`` is the signed sum of the samples without the key.
    Rows are sorted by |amount| descending, then value.
    """
    sid = _pprof_sid(store, ref)
    idx, stype, unit = resolve_sample_type(store, sid, sample_type)
    keys = label_keys(store, sid)
    if key not in keys:
        has = ", ".join(keys) if keys else "no string labels"
        raise PerflabError(f"source {sid} has no samples labelled {key!r} (it has: {has})")
    params = {"sid": sid, "idx": idx + 1, "key": key}
    total, unlabelled = store.con.execute(
        """SELECT coalesce(sum(abs(s.value[$idx])), 0),
                  coalesce(sum(s.value[$idx]) FILTER (WHERE NOT EXISTS (
                      SELECT 1 FROM pprof_labels l
                      WHERE l.source_id = $sid AND l.key = $key AND l.str IS NOT NULL
                        AND l.sample_idx = s.sample_idx)), 0)
           FROM pprof_samples s WHERE s.source_id = $sid""", params).fetchall()[0]
    rows = store.con.execute(
        """SELECT l.str, sum(s.value[$idx])
           FROM pprof_labels l JOIN pprof_samples s ON s.source_id = l.source_id AND s.sample_idx = l.sample_idx
           WHERE l.source_id = $sid AND l.key = $key AND l.str IS NOT NULL
           GROUP BY l.str""", params).fetchall()
    total = int(total)
    out = sorted(({"value": v, "amount": int(a), "pct": 100.0 * int(a) / total if total else 0.0} for v, a in rows),
                 key=lambda r: (-abs(r["amount"]), r["value"]))
    return {"source_id": sid, "key": key, "sample_type": stype, "unit": unit, "total": total,
            "key_total": sum(r["amount"] for r in out), "unlabelled": int(unlabelled), "rows": out}


def name_path(name: str) -> str | None:
    """The path of a k6 request name (a URL, or a name such as ``GET /report?user={u}``)."""
    m = _NAME_PATH.match(name.strip())
    return m["path"] if m and m["path"] else None


def profile_window_ns(store: Store, source_id: int) -> tuple[int, int] | None:
    """[start, end) of the profile in ns since the epoch, when it says (time and duration)."""
    row = store.con.execute(
        "SELECT time_nanos, duration_nanos FROM pprof_profiles WHERE source_id = ?", [source_id]).fetchall()
    if not row or not row[0][0] or not row[0][1]:
        return None
    return int(row[0][0]), int(row[0][0]) + int(row[0][1])


def k6_requests(store: Store, k6_source: int, key: str, values: list[str],
                window_ns: tuple[int, int] | None = None) -> dict[str, Any]:
    """k6's request count per label value (the matching rule is the module docstring's).

    Returns {"by": "tag KEY" | "name", "over": "the profile's window" | "the whole test",
    "requests": {value: count}, "names": {value: [k6 names]}}; values no request matches
    are absent. ``window_ns`` is used only when k6's points carry times within it.
    """
    where = "source_id = ? AND metric = 'http_reqs'"
    params: list[Any] = [k6_source]
    over = "the whole test"
    if window_ns is not None:
        inside = store.con.execute(f"SELECT count(*) FROM k6_points WHERE {where} AND time_ns >= ? AND time_ns < ?",
                                   [*params, *window_ns]).fetchall()[0][0]
        if inside:
            where += " AND time_ns >= ? AND time_ns < ?"
            params += list(window_ns)
            over = "the profile's window"
    by_tag = store.con.execute(
        f"SELECT json_extract_string(tags, ?) AS v, sum(value) FROM k6_points WHERE {where} AND v IS NOT NULL "
        "GROUP BY v", [f"$.{key}", *params]).fetchall()
    wanted = set(values)
    tagged = {v: int(n) for v, n in by_tag if v in wanted}
    if tagged:
        return {"by": f"tag {key}", "over": over, "requests": tagged, "names": {v: [v] for v in tagged}}
    counts: dict[str, int] = {}
    names: dict[str, list[str]] = {}
    for name, n in store.con.execute(
            f"SELECT json_extract_string(tags, '$.name') AS name, sum(value) FROM k6_points WHERE {where} "
            "AND name IS NOT NULL GROUP BY name ORDER BY name", params).fetchall():
        value = name if name in wanted else name_path(name)
        if value in wanted:
            counts[value] = counts.get(value, 0) + int(n)
            names.setdefault(value, []).append(name)
    return {"by": "name", "over": over, "requests": counts, "names": names}


def cpu_per_request(store: Store, profile_source: int, k6_source: int, key: str) -> dict[str, Any]:
    """CPU milliseconds per request by endpoint: :func:`tag_values` of ``key`` over
    :func:`k6_requests`. Rows are sorted by CPU descending; ``unmatched`` lists the label
    values no k6 request matched (their CPU is in ``rows`` with requests None)."""
    tags = tag_values(store, profile_source, key)
    per_ms = MS_PER_UNIT.get(tags["unit"])
    if per_ms is None:
        raise PerflabError(f"source {profile_source}'s sample type {tags['sample_type']} is in {tags['unit']}, "
                           "not a time: no CPU milliseconds")
    values = [r["value"] for r in tags["rows"]]
    k6 = k6_requests(store, k6_source, key, values, profile_window_ns(store, profile_source))
    rows = []
    for r in tags["rows"]:
        n = k6["requests"].get(r["value"])
        cpu_ms = r["amount"] * per_ms
        rows.append({"endpoint": r["value"], "cpu_ms": cpu_ms, "cpu_pct": r["pct"], "requests": n,
                     "cpu_ms_per_request": cpu_ms / n if n else None, "k6_names": k6["names"].get(r["value"], [])})
    return {"key": key, "sample_type": tags["sample_type"], "total_cpu_ms": tags["total"] * per_ms,
            "unlabelled_cpu_ms": tags["unlabelled"] * per_ms, "matched_by": k6["by"], "requests_over": k6["over"],
            "rows": rows, "unmatched": [r["endpoint"] for r in rows if r["requests"] is None]}
