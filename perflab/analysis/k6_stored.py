"""k6's default summary of a k6 NDJSON/CSV source, stored so that reading it is one query.

Computing k6's summary reads every point of the source (k6's percentiles need all of them):
0.4 s for 4.24M points, plus ~0.7 s of imports (numpy, polars, pyarrow). The default
summary (no ``by``, k6's default trend stats, no explicit companion) is what `perflab k6`,
`perflab runs` and the reports ask for, so it is kept in ``k6_summaries``, one row per
source, as the JSON of the computed dict (Python's JSON: floats round-trip exactly and a NaN
stays NaN, so the answer read back is the computed one, byte for byte).

The row carries a fingerprint of what the summary was computed from: the source's row, the
k6 files of the same run (a summary file gives the test-run duration and the metric
definitions), this module's version and the analysis code. A row whose fingerprint no
longer matches is not read; forgetting the source deletes the row (its ``source_id``).

This module reads and writes rows only: perflab.analysis.loadtest computes the summary and
stores it here, so reading a stored one imports neither numpy nor polars.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from perflab.analysis.code_version import analysis_code
from perflab.store import Store
from perflab.vocab import K6_KINDS

# Part of every fingerprint: raise it when what is stored changes shape.
STORED_VERSION = 1

# One source's fingerprint: its own row and the content of every other k6 file of its run.
_FINGERPRINT = """
SELECT md5(concat_ws('|', ?, ?, s.source_id::VARCHAR, s.kind, s.sha256, s.path, coalesce(s.run_id, ''),
           coalesce(s.meta::VARCHAR, ''),
           (SELECT coalesce(string_agg(c.source_id::VARCHAR || ':' || c.sha256, ',' ORDER BY c.source_id), '')
              FROM sources c WHERE c.run_id = s.run_id AND c.source_id <> s.source_id AND c.kind IN ?)))
FROM sources s WHERE s.source_id = ?
"""


def fingerprint(store: Store, source_id: int) -> str | None:
    rows = store.con.execute(_FINGERPRINT, [STORED_VERSION, analysis_code(), list(K6_KINDS),
                                            int(source_id)]).fetchall()
    return str(rows[0][0]) if rows else None


def read(store: Store, source_id: int) -> dict[str, Any] | None:
    """The stored default summary of a source, or None when there is none or it is stale."""
    rows = store.con.execute(
        f"SELECT k.summary FROM k6_summaries k WHERE k.source_id = ? AND k.fingerprint = ({_FINGERPRINT})",
        [int(source_id), STORED_VERSION, analysis_code(), list(K6_KINDS), int(source_id)]).fetchall()
    if not rows:
        return None
    summary: dict[str, Any] = json.loads(rows[0][0])
    return summary


def write(store: Store, source_id: int, summary: dict[str, Any]) -> None:
    """Store a source's default summary (nothing on a store opened read-only)."""
    if store.read_only:
        return
    print_ = fingerprint(store, source_id)
    if print_ is None:
        return
    with store.transaction():
        store.con.execute("DELETE FROM k6_summaries WHERE source_id = ?", [int(source_id)])
        store.con.execute("INSERT INTO k6_summaries VALUES (?, ?, ?, ?)",
                          [int(source_id), print_, json.dumps(summary), datetime.now(UTC)])
