"""The lab's own samples: per-process-role resources and the sample service's /debug/vars.

Files are JSONL written by perflab.lab.sampler. The first line is a header naming the
kind (``{"perflab": "resources", "version": 1, ...}``), so detection is by content;
data lines follow and are loaded by DuckDB in one statement.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from perflab.errors import InputError
from perflab.ingest._registry import Context, Format, Sniff, register
from perflab.vocab import RESOURCES, SAMPLE_SERVICE_VARS_ROLES, SERVICE_VARS

RESOURCE_COLUMNS = {
    "t": "TIMESTAMPTZ",
    "elapsed_s": "DOUBLE",
    "role": "VARCHAR",
    "processes": "INTEGER",
    "cpu_pct": "DOUBLE",
    "rss_bytes": "BIGINT",
    "threads": "INTEGER",
    "ctx_voluntary": "BIGINT",
    "ctx_involuntary": "BIGINT",
}
VARS_COLUMNS = {"t": "TIMESTAMPTZ", "elapsed_s": "DOUBLE", "key": "VARCHAR", "value": "DOUBLE"}


def _header(sniff: Sniff) -> dict[str, Any] | None:
    first = sniff.head.split(b"\n", 1)[0]
    if not first.startswith(b'{"perflab"'):
        return None
    try:
        obj = json.loads(first)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def _loader(kind: str, table: str, columns: dict[str, str], required: str, roles: dict[str, str] | None = None
            ) -> tuple[Callable[[Sniff], bool], Callable[[Context], dict[str, Any]]]:
    def detect(sniff: Sniff) -> bool:
        head = _header(sniff)
        return head is not None and head.get("perflab") == kind

    def ingest(ctx: Context) -> dict[str, Any]:
        path = str(ctx.plain_path())
        with open(path, "rb") as fh:
            header = json.loads(fh.readline())
        if header.get("version") != 1:
            raise InputError(ctx.path, f"{kind} file version {header.get('version')!r}; this perflab reads 1")
        ctx.meta.update({k: v for k, v in header.items() if k != "perflab"})
        cols = ", ".join(columns)
        spec = "{" + ", ".join(f"'{c}': '{t}'" for c, t in columns.items()) + "}"
        ctx.con.execute(
            f"INSERT INTO {table} (source_id, run_id, {cols}) "
            f"SELECT ?, ?, {cols} FROM read_json(?, format='newline_delimited', columns={spec}) "
            f"WHERE {required} IS NOT NULL",  # the header line has none of the data columns
            [ctx.source_id, ctx.run_id, path],
        )
        n = ctx.con.execute(f"SELECT count(*) FROM {table} WHERE source_id = ?", [ctx.source_id]).fetchall()[0][0]
        if roles and ctx.run_id is not None:
            # The sample service's keys by role, unless the run maps a role itself.
            ctx.store.ensure_run(ctx.run_id)
            ctx.con.execute("INSERT OR IGNORE INTO run_roles SELECT ?, unnest(?), unnest(?)",
                            [ctx.run_id, list(roles), list(roles.values())])
        return {"samples": int(n)}

    return detect, ingest


_d, _i = _loader(RESOURCES, "resource_samples", RESOURCE_COLUMNS, "role")
register(Format(kind=RESOURCES, description="perflab lab resource samples (JSONL)", detect=_d, ingest=_i,
                priority=10))
_d, _i = _loader(SERVICE_VARS, "service_vars", VARS_COLUMNS, "key", SAMPLE_SERVICE_VARS_ROLES)
register(Format(kind=SERVICE_VARS, description="perflab lab /debug/vars samples (JSONL)", detect=_d, ingest=_i,
                priority=10))
