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
# One row per pstats key and one per caller->callee edge. calls = pstats' nc (every
# call), primitive_calls = cc (calls not made from inside the same function), times in
# seconds. func_id is the key's position in the file's dict (callers-only keys follow),
# so summing tottime in func_id order reproduces pstats' own float total exactly.
CPROFILE_DDL = """
CREATE TABLE cprofile_functions (
    source_id       BIGINT NOT NULL,
    run_id          VARCHAR,
    func_id         INTEGER NOT NULL,
    file            VARCHAR NOT NULL,      -- '~' for built-ins
    line            BIGINT NOT NULL,
    name            VARCHAR NOT NULL,      -- '<built-in method builtins.len>' for built-ins
    std_name        VARCHAR NOT NULL,      -- pstats.func_std_string(key)
    calls           BIGINT,                -- NULL: the key appears only as a caller
    primitive_calls BIGINT,
    tottime         DOUBLE,
    cumtime         DOUBLE
);
CREATE TABLE cprofile_edges (
    source_id       BIGINT NOT NULL,
    run_id          VARCHAR,
    caller_id       INTEGER NOT NULL,      -- cprofile_functions.func_id of the same source
    callee_id       INTEGER NOT NULL,
    calls           BIGINT NOT NULL,
    primitive_calls BIGINT,                -- NULL (and the times too): the pure-Python
    tottime         DOUBLE,                -- `profile` module, which stores only a count
    cumtime         DOUBLE
);
"""

# --- k6 (perflab/ingest/k6.py) ------------------------------------------------------
K6_DDL = """
"""

# --- PostgreSQL statistics (perflab/ingest/pgstat.py) -----------------------------
PG_DDL = """
"""

# --- the lab's own samples (perflab/ingest/resources.py) ---------------------------
RESOURCES_DDL = """
CREATE TABLE resource_samples (
    source_id       BIGINT NOT NULL,
    run_id          VARCHAR,
    t               TIMESTAMPTZ NOT NULL,
    elapsed_s       DOUBLE NOT NULL,     -- since the sampler started
    role            VARCHAR NOT NULL,    -- service | postgres | k6 | host (the whole machine)
    processes       INTEGER NOT NULL,    -- live processes of the role at this sample
    cpu_pct         DOUBLE,              -- % of one core over the interval (2 cores = 200 %); NULL on the first sample
    rss_bytes       BIGINT,
    threads         INTEGER,
    ctx_voluntary   BIGINT,              -- context switches during the interval
    ctx_involuntary BIGINT
);
CREATE TABLE service_vars (
    source_id  BIGINT NOT NULL,
    run_id     VARCHAR,
    t          TIMESTAMPTZ NOT NULL,
    elapsed_s  DOUBLE NOT NULL,
    key        VARCHAR NOT NULL,         -- flattened /debug/vars path, e.g. pool.checked_out
    value      DOUBLE NOT NULL
);
"""

DDL = [CORE_DDL, PPROF_DDL, CPROFILE_DDL, K6_DDL, PG_DDL, RESOURCES_DDL]


def statements() -> list[str]:
    """Every CREATE statement of the current schema, in order."""
    out: list[str] = []
    for block in DDL:
        # Comments go first, so a ';' or ',' inside one cannot split or break a statement.
        text = "\n".join(ln.split("--", 1)[0].rstrip() for ln in block.splitlines())
        out.extend(stmt.strip() for stmt in text.split(";") if stmt.strip())
    return out
