"""A process's CPU and memory samples as a CSV a user records (pidstat, ps or a shell loop).

Two headers, exactly (spaces around names allowed):

    time,cpu_percent_of_one_core,rss_bytes
    time,cpu_seconds_total,rss_bytes

``time`` is RFC 3339 with its offset or unix seconds, increasing. ``cpu_percent_of_one_core``
is the CPU used since the previous sample, in percent of one core (pidstat's ``%CPU``: 250
is two and a half cores busy); ``cpu_seconds_total`` the process's cumulative CPU time
(utime + stime, e.g. from /proc/PID/stat). ``rss_bytes`` the resident set size in bytes.

Stored under the names Prometheus's standard process collector uses, so a run reads them
like any service's metrics:

* ``process_cpu_seconds_total`` (counter, family ``process_cpu_seconds``). A
  ``cpu_seconds_total`` column is stored as it is. A percent column is integrated over the
  sample intervals: 0 at the first sample (its percent covers an interval before the file
  starts and is not counted), then each sample adds ``percent / 100 × seconds since the
  previous sample``. The counter's rate between two samples is the later sample's percent
  / 100 (to float rounding), so CPU in % of one core is ``100 × rate`` over any window,
  whichever column the file had. The percent is not stored a second time.
* ``process_resident_memory_bytes`` (gauge).

Read by DuckDB's CSV reader in bulk. Refused, naming the line: a header other than these, a
row with another number of cells, a time that is not one (NaN included), a time that does
not increase, a value that is not a number, and a NaN or negative percent (it cannot be
integrated). A NaN ``cpu_seconds_total`` or ``rss_bytes`` is a sample value and kept.
"""

from __future__ import annotations

import re
from typing import Any

import duckdb

from perflab.errors import InputError
from perflab.ingest._k6_common import drop_temp, insertion_order, row_base, sql_path, temp_name
from perflab.ingest._metric_samples import summary, time_sql
from perflab.ingest._registry import Context, Format, Sniff, one_line, register
from perflab.vocab import PROCESS_SAMPLES

PERCENT_HEADER = ("time", "cpu_percent_of_one_core", "rss_bytes")
SECONDS_HEADER = ("time", "cpu_seconds_total", "rss_bytes")
CPU_NAME, CPU_FAMILY = "process_cpu_seconds_total", "process_cpu_seconds"
RSS_NAME = "process_resident_memory_bytes"


def _header(first: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in first.removeprefix("\ufeff").rstrip("\r\n").split(","))


def _detect(sniff: Sniff) -> bool:
    first = sniff.text_head.split("\n", 1)[0]
    return _header(first) in (PERCENT_HEADER, SECONDS_HEADER)


def _ingest(ctx: Context) -> dict[str, Any]:
    path = ctx.plain_path()
    with open(path, "rb") as fh:
        header = _header(fh.readline(1 << 16).decode("utf-8", errors="replace"))
    if header not in (PERCENT_HEADER, SECONDS_HEADER):
        raise InputError(ctx.path, f"not a process samples header (expected {','.join(PERCENT_HEADER)} or "
                                   f"{','.join(SECONDS_HEADER)}; got {','.join(header)[:120]!r})")
    cpu = header[1]
    con = ctx.con
    raw = temp_name(ctx, "proccsv")
    with insertion_order(con):
        try:
            con.execute(
                f"CREATE TEMP TABLE {raw} AS SELECT * FROM read_csv({sql_path(path)}, header = true, "
                "auto_detect = false, delim = ',', quote = '\"', escape = '\"', "
                "columns = {'time': 'VARCHAR', 'cpu': 'VARCHAR', 'rss': 'VARCHAR'}, "
                "null_padding = false, strict_mode = true)"
            )
        except duckdb.Error as exc:
            m = re.search(r"\bLine: (\d+)|\bline (\d+)", str(exc))
            where = f"line {m.group(1) or m.group(2)}: " if m else ""
            raise InputError(ctx.path, f"{where}not a process samples row ({one_line(exc)[:160]})") from None
    rows = temp_name(ctx, "proccsv_rows")
    try:
        base = row_base(con, raw)
        con.execute(
            f"CREATE TEMP TABLE {rows} AS SELECT rowid - {base} + 2 AS line, time, cpu, rss, "
            f"{time_sql('time')} AS t, try_cast(trim(cpu) AS DOUBLE) AS c, try_cast(trim(rss) AS DOUBLE) AS r "
            f"FROM {raw}"
        )
        _check(ctx, rows, cpu)
        cumulative = ("c" if cpu == SECONDS_HEADER[1] else
                      "coalesce(sum(c / 100 * (epoch_us(t) - epoch_us(prev_t)) / 1e6) "
                      "OVER (ORDER BY line ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW), 0)")
        con.execute(
            "INSERT INTO metric_samples (source_id, run_id, t, name, family, type, labels, value, exemplar) "
            f"SELECT ?, ?, t, unnest(['{CPU_NAME}', '{RSS_NAME}']), unnest(['{CPU_FAMILY}', '{RSS_NAME}']), "
            f"unnest(['counter', 'gauge']), '{{}}', unnest([cpu_seconds, r]), NULL "
            f"FROM (SELECT t, r, {cumulative} AS cpu_seconds FROM "
            f"(SELECT *, lag(t) OVER (ORDER BY line) AS prev_t FROM {rows}))",
            [ctx.source_id, ctx.run_id],
        )
    finally:
        drop_temp(con, rows)
        drop_temp(con, raw)
    counts = summary(ctx, cpu_column=cpu)
    return counts


def _check(ctx: Context, rows: str, cpu: str) -> None:
    con = ctx.con
    if con.execute(f"SELECT count(*) FROM {rows}").fetchall()[0][0] == 0:
        raise InputError(ctx.path, "a header and no rows")
    percent = cpu == PERCENT_HEADER[1]
    bad = con.execute(
        f"""SELECT line, time, cpu, rss, t IS NULL, c IS NULL, r IS NULL, prev_t IS NOT NULL AND t <= prev_t,
                   ? AND (isnan(c) OR c < 0)
            FROM (SELECT *, lag(t) OVER (ORDER BY line) AS prev_t FROM {rows})
            WHERE t IS NULL OR c IS NULL OR r IS NULL OR (prev_t IS NOT NULL AND t <= prev_t)
               OR (? AND (isnan(c) OR c < 0))
            ORDER BY line LIMIT 1""",
        [percent, percent],
    ).fetchall()
    if not bad:
        return
    line, time, cpu_text, rss_text, bad_t, bad_c, bad_r, backwards, bad_pct = bad[0]
    if bad_t:
        problem = f"time {str(time)[:60]!r} is not RFC 3339 (with its offset) or unix seconds"
    elif backwards:
        problem = f"time {str(time)[:60]!r} is not after the previous sample's"
    elif bad_c:
        problem = f"{cpu} {str(cpu_text)[:40]!r} is not a number"
    elif bad_r:
        problem = f"rss_bytes {str(rss_text)[:40]!r} is not a number"
    else:
        assert bad_pct
        problem = f"{cpu} {str(cpu_text)[:40]!r} cannot be integrated into CPU seconds (NaN or negative)"
    raise InputError(ctx.path, f"line {line}: {problem}")


register(Format(
    kind=PROCESS_SAMPLES,
    description="process CPU/RSS samples CSV: time,cpu_percent_of_one_core|cpu_seconds_total,rss_bytes",
    detect=_detect,
    ingest=_ingest,
    priority=20,
))
