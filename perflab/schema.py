"""The store's schema, in one place, with its version.

Every fact table carries ``source_id`` (the file it came from) and ``run_id``
(the lab run or user-given group, NULL when unknown), so one SQL query can join a
run's k6 points, its profiles and its database statistics.

Fact tables have no PRIMARY KEY/UNIQUE constraints on purpose: DuckDB maintains an
ART index per constraint, which makes bulk loads of millions of rows several times
slower; uniqueness comes from the ingester instead (one transaction per file).

Bump SCHEMA_VERSION whenever a statement below changes, and add a migration from
the previous version to MIGRATIONS in store.py.
"""

from __future__ import annotations

SCHEMA_VERSION = 1

CORE_DDL = """
CREATE TABLE perflab_meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL);
CREATE TABLE sources (
    source_id   BIGINT PRIMARY KEY,
    kind        VARCHAR NOT NULL,          -- registry name of the format: pprof, cprofile, k6, ...
    path        VARCHAR NOT NULL,          -- absolute path at ingest time
    bytes       BIGINT NOT NULL,           -- size of the file as given (compressed if gzipped)
    sha256      VARCHAR NOT NULL UNIQUE,   -- of the file as given: same content, same source
    ingested_at TIMESTAMPTZ NOT NULL,
    run_id      VARCHAR,
    meta        JSON                       -- format-specific facts (view name, sample types, ...)
);
CREATE TABLE runs (
    run_id      VARCHAR PRIMARY KEY,
    created_at  TIMESTAMPTZ NOT NULL,
    scenario    VARCHAR,
    variant     VARCHAR,
    status      VARCHAR,                   -- complete | incomplete | NULL for user-made groups
    manifest    JSON
);
"""

# --- pprof (perflab/ingest/pprof.py) ------------------------------------------------
PPROF_DDL = """
"""

# --- cProfile (perflab/ingest/cprofile.py) -----------------------------------------
CPROFILE_DDL = """
"""

# --- k6 (perflab/ingest/k6.py) ------------------------------------------------------
K6_DDL = """
"""

# --- PostgreSQL statistics (perflab/ingest/pgstat.py) -----------------------------
PG_DDL = """
"""

DDL = [CORE_DDL, PPROF_DDL, CPROFILE_DDL, K6_DDL, PG_DDL]


def statements() -> list[str]:
    """Every CREATE statement of the current schema, in order."""
    out: list[str] = []
    for block in DDL:
        for stmt in block.split(";"):
            # Drop SQL comments line by line so a ';' inside a comment cannot split a statement.
            lines = [ln.split("--", 1)[0] for ln in stmt.splitlines()]
            text = "\n".join(ln for ln in lines if ln.strip())
            if text.strip():
                out.append(text.strip())
    return out
