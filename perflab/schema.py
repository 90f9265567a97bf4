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

SCHEMA_VERSION = 4

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
# Ids are the file's own (unique within a source). Strings are resolved from the string
# table; an index 0 ("unset") becomes NULL where the field is optional.
PPROF_DDL = """
CREATE TABLE pprof_profiles (
    source_id            BIGINT NOT NULL,
    run_id               VARCHAR,
    period_type          VARCHAR,          -- '' when the profile has none
    period_unit          VARCHAR,
    period               BIGINT,
    time_nanos           BIGINT,
    duration_nanos       BIGINT,
    default_sample_type  VARCHAR,          -- as the file names it (NULL when unset)
    default_sample_index INTEGER,          -- pprof's choice: the named type, else the last
    drop_frames          VARCHAR,          -- applied when read, as pprof does (perflab.analysis.pprof_frames)
    keep_frames          VARCHAR,
    comments             VARCHAR[],
    doc_url              VARCHAR,
    num_samples          BIGINT,
    num_locations        BIGINT
);
CREATE TABLE pprof_sample_types (
    source_id BIGINT NOT NULL, run_id VARCHAR,
    idx       INTEGER NOT NULL,            -- position in Sample.value
    type      VARCHAR NOT NULL,
    unit      VARCHAR NOT NULL
);
CREATE TABLE pprof_mappings (
    source_id BIGINT NOT NULL, run_id VARCHAR,
    mapping_id UBIGINT NOT NULL, memory_start UBIGINT, memory_limit UBIGINT, file_offset UBIGINT,
    filename VARCHAR, build_id VARCHAR,
    has_functions BOOLEAN, has_filenames BOOLEAN, has_line_numbers BOOLEAN, has_inline_frames BOOLEAN
);
CREATE TABLE pprof_functions (
    source_id BIGINT NOT NULL, run_id VARCHAR,
    function_id UBIGINT NOT NULL, name VARCHAR, system_name VARCHAR, filename VARCHAR, start_line BIGINT
);
CREATE TABLE pprof_locations (
    source_id BIGINT NOT NULL, run_id VARCHAR,
    location_id UBIGINT NOT NULL,
    mapping_id  UBIGINT,                   -- NULL: no mapping
    address     UBIGINT,
    is_folded   BOOLEAN
);
CREATE TABLE pprof_lines (
    source_id BIGINT NOT NULL, run_id VARCHAR,
    location_id UBIGINT NOT NULL,
    line_idx    INTEGER NOT NULL,          -- 0 is the innermost inlined call, the last holds the frame
    function_id UBIGINT,                   -- NULL: no function
    line        BIGINT,
    "column"    BIGINT
);
-- pprof's function-level nodes: a function name, [mapping basename] or <unknown>.
CREATE TABLE pprof_nodes (
    source_id BIGINT NOT NULL, run_id VARCHAR,
    node_id   INTEGER NOT NULL,
    name      VARCHAR NOT NULL
);
-- One row per distinct stack of a source; both lists leaf first. node_ids is the stack
-- after inline expansion (one entry per Line), so flat goes to node_ids[1] and cum to each
-- distinct node: unnest(CASE WHEN recursive THEN list_distinct(node_ids) ELSE node_ids END).
CREATE TABLE pprof_stacks (
    source_id BIGINT NOT NULL, run_id VARCHAR,
    stack_id     INTEGER NOT NULL,
    location_ids UBIGINT[] NOT NULL,
    node_ids     INTEGER[] NOT NULL,
    recursive    BOOLEAN NOT NULL          -- some node appears more than once
);
CREATE TABLE pprof_samples (
    source_id BIGINT NOT NULL, run_id VARCHAR,
    sample_idx BIGINT NOT NULL,            -- position in the file
    stack_id   INTEGER NOT NULL,
    value      BIGINT[] NOT NULL           -- one per sample type, in pprof_sample_types.idx order
);
CREATE TABLE pprof_labels (
    source_id BIGINT NOT NULL, run_id VARCHAR,
    sample_idx BIGINT NOT NULL,
    key        VARCHAR NOT NULL,
    str        VARCHAR,                    -- a string label ...
    num        BIGINT,                     -- ... or a numeric one
    num_unit   VARCHAR
);
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
CREATE TABLE k6_metrics (               -- the Metric lines of an NDJSON (CSV has none)
    source_id   BIGINT NOT NULL,
    run_id      VARCHAR,
    seq         BIGINT NOT NULL,        -- line number of the Metric line
    name        VARCHAR NOT NULL,
    type        VARCHAR NOT NULL,       -- counter | gauge | rate | trend
    contains    VARCHAR,                -- default | time (ms) | data (bytes)
    thresholds  JSON,                   -- threshold sources of the parent metric only (k6 lists no others)
    submetrics  JSON                    -- [{name, suffix, tags}] or NULL
);
CREATE TABLE k6_points (                -- one row per Point line (NDJSON) or data row (CSV)
    source_id      BIGINT NOT NULL,
    run_id         VARCHAR,
    seq            BIGINT NOT NULL,     -- line number in the file: k6's arrival order (avg depends on it)
    metric         VARCHAR NOT NULL,
    time           TIMESTAMPTZ,         -- the UTC instant, truncated to µs, for joins
    time_ns        BIGINT,              -- the exact instant: ns since the epoch (UTC)
    utc_offset_min SMALLINT,            -- the zone offset k6 wrote (+330 for +05:30); NULL for CSV unix times
    value          DOUBLE NOT NULL,
    tags           JSON,                -- every tag as k6 wrote it, values are strings
    metadata       JSON                 -- vu, iter, trace ids...; NULL when k6 wrote none
);
CREATE TABLE k6_summary_metrics (       -- metrics of a --summary-export or handleSummary() file
    source_id   BIGINT NOT NULL,
    run_id      VARCHAR,
    metric      VARCHAR NOT NULL,       -- 'http_req_duration' or 'http_req_duration{endpoint:fast}'
    parent      VARCHAR,                -- the metric a submetric belongs to; NULL for a metric
    selector    JSON,                   -- a submetric's tag pairs, {"endpoint": "fast"}
    type        VARCHAR,                -- counter | gauge | rate | trend (inferred for summary-export)
    contains    VARCHAR                 -- NULL when the file does not say (summary-export, custom metric)
);
CREATE TABLE k6_summary_values (
    source_id   BIGINT NOT NULL,
    run_id      VARCHAR,
    metric      VARCHAR NOT NULL,
    stat        VARCHAR NOT NULL,       -- k6's own field names: avg, p(95), count, rate, passes, value...
    value       DOUBLE NOT NULL
);
CREATE TABLE k6_thresholds (
    source_id   BIGINT NOT NULL,
    run_id      VARCHAR,
    metric      VARCHAR NOT NULL,
    expr        VARCHAR NOT NULL,       -- the threshold source, 'p(95)<2000'
    passed      BOOLEAN NOT NULL        -- normalised: summary-export writes true for FAILED
);
CREATE TABLE k6_checks (
    source_id   BIGINT NOT NULL,
    run_id      VARCHAR,
    path        VARCHAR NOT NULL,       -- '::group::sub::check name'
    group_path  VARCHAR NOT NULL,       -- '' for the root group
    name        VARCHAR NOT NULL,
    passes      BIGINT NOT NULL,
    fails       BIGINT NOT NULL
);
"""

# --- PostgreSQL statistics (perflab/ingest/pgstat.py) -----------------------------
# One table per view. Columns are the union over PostgreSQL 12-18 under their newest
# names (total_time -> total_exec_time, blk_read_time -> shared_blk_read_time in
# pg_stat_statements); a column the file's version lacks is NULL. oids and xids are
# BIGINT (unsigned 32-bit in PostgreSQL), times in ms as PostgreSQL reports them.
# snapshot_at is when the snapshot was taken if known (live clock; NULL for plain files).
PG_DDL = """
CREATE TABLE pg_stat_statements_snap (
    source_id BIGINT NOT NULL, run_id VARCHAR, snapshot_at TIMESTAMPTZ,
    userid BIGINT, dbid BIGINT,
    toplevel BOOLEAN,                     -- PG >= 14; NULL before (analysis treats it as true)
    queryid BIGINT,                       -- signed 64-bit hash, never through a float
    query VARCHAR,
    plans BIGINT, total_plan_time DOUBLE, min_plan_time DOUBLE, max_plan_time DOUBLE,
    mean_plan_time DOUBLE, stddev_plan_time DOUBLE,
    calls BIGINT,
    total_exec_time DOUBLE, min_exec_time DOUBLE, max_exec_time DOUBLE,    -- PG 12: *_time
    mean_exec_time DOUBLE, stddev_exec_time DOUBLE,
    rows BIGINT,
    shared_blks_hit BIGINT, shared_blks_read BIGINT, shared_blks_dirtied BIGINT, shared_blks_written BIGINT,
    local_blks_hit BIGINT, local_blks_read BIGINT, local_blks_dirtied BIGINT, local_blks_written BIGINT,
    temp_blks_read BIGINT, temp_blks_written BIGINT,
    shared_blk_read_time DOUBLE, shared_blk_write_time DOUBLE,             -- PG < 17: blk_*_time
    local_blk_read_time DOUBLE, local_blk_write_time DOUBLE,
    temp_blk_read_time DOUBLE, temp_blk_write_time DOUBLE,
    wal_records BIGINT, wal_fpi BIGINT,
    wal_bytes BIGINT,                     -- numeric in PostgreSQL, but a per-statement byte count fits int64
    wal_buffers_full BIGINT,
    jit_functions BIGINT, jit_generation_time DOUBLE,
    jit_inlining_count BIGINT, jit_inlining_time DOUBLE,
    jit_optimization_count BIGINT, jit_optimization_time DOUBLE,
    jit_emission_count BIGINT, jit_emission_time DOUBLE,
    jit_deform_count BIGINT, jit_deform_time DOUBLE,
    parallel_workers_to_launch BIGINT, parallel_workers_launched BIGINT,
    stats_since TIMESTAMPTZ, minmax_stats_since TIMESTAMPTZ
);
CREATE TABLE pg_stat_statements_info_snap (
    source_id BIGINT NOT NULL, run_id VARCHAR, snapshot_at TIMESTAMPTZ,
    dealloc BIGINT, stats_reset TIMESTAMPTZ
);
CREATE TABLE pg_stat_user_tables_snap (
    source_id BIGINT NOT NULL, run_id VARCHAR, snapshot_at TIMESTAMPTZ,
    relid BIGINT, schemaname VARCHAR, relname VARCHAR,
    seq_scan BIGINT, last_seq_scan TIMESTAMPTZ, seq_tup_read BIGINT,
    idx_scan BIGINT, last_idx_scan TIMESTAMPTZ, idx_tup_fetch BIGINT,    -- NULL for a table without index
    n_tup_ins BIGINT, n_tup_upd BIGINT, n_tup_del BIGINT, n_tup_hot_upd BIGINT, n_tup_newpage_upd BIGINT,
    n_live_tup BIGINT, n_dead_tup BIGINT, n_mod_since_analyze BIGINT, n_ins_since_vacuum BIGINT,
    last_vacuum TIMESTAMPTZ, last_autovacuum TIMESTAMPTZ, last_analyze TIMESTAMPTZ, last_autoanalyze TIMESTAMPTZ,
    vacuum_count BIGINT, autovacuum_count BIGINT, analyze_count BIGINT, autoanalyze_count BIGINT,
    total_vacuum_time DOUBLE, total_autovacuum_time DOUBLE, total_analyze_time DOUBLE, total_autoanalyze_time DOUBLE
);
CREATE TABLE pg_stat_user_indexes_snap (
    source_id BIGINT NOT NULL, run_id VARCHAR, snapshot_at TIMESTAMPTZ,
    relid BIGINT, indexrelid BIGINT, schemaname VARCHAR, relname VARCHAR, indexrelname VARCHAR,
    idx_scan BIGINT, last_idx_scan TIMESTAMPTZ, idx_tup_read BIGINT, idx_tup_fetch BIGINT
);
CREATE TABLE pg_stat_database_snap (
    source_id BIGINT NOT NULL, run_id VARCHAR, snapshot_at TIMESTAMPTZ,
    datid BIGINT, datname VARCHAR,        -- datid 0 / datname NULL: the shared catalogs
    numbackends INTEGER, xact_commit BIGINT, xact_rollback BIGINT, blks_read BIGINT, blks_hit BIGINT,
    tup_returned BIGINT, tup_fetched BIGINT, tup_inserted BIGINT, tup_updated BIGINT, tup_deleted BIGINT,
    conflicts BIGINT, temp_files BIGINT, temp_bytes BIGINT, deadlocks BIGINT,
    checksum_failures BIGINT, checksum_last_failure TIMESTAMPTZ,
    blk_read_time DOUBLE, blk_write_time DOUBLE,
    session_time DOUBLE, active_time DOUBLE, idle_in_transaction_time DOUBLE,
    sessions BIGINT, sessions_abandoned BIGINT, sessions_fatal BIGINT, sessions_killed BIGINT,
    parallel_workers_to_launch BIGINT, parallel_workers_launched BIGINT,
    stats_reset TIMESTAMPTZ
);
CREATE TABLE pg_stat_activity_samples (
    source_id BIGINT NOT NULL, run_id VARCHAR, snapshot_at TIMESTAMPTZ,
    sample_no INTEGER,                    -- group a sample by this: sample_ts is per row (clock_timestamp)
    sample_ts TIMESTAMPTZ,
    datid BIGINT, datname VARCHAR, pid INTEGER, leader_pid INTEGER, usesysid BIGINT, usename VARCHAR,
    application_name VARCHAR, client_addr VARCHAR, client_hostname VARCHAR,
    client_port INTEGER,                  -- -1 for a Unix-socket client
    backend_start TIMESTAMPTZ, xact_start TIMESTAMPTZ, query_start TIMESTAMPTZ, state_change TIMESTAMPTZ,
    wait_event_type VARCHAR, wait_event VARCHAR, state VARCHAR,
    backend_xid BIGINT, backend_xmin BIGINT, query_id BIGINT, query VARCHAR, backend_type VARCHAR
);
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

# --- perflab bench-writes (perflab/ingest/benchwrites.py) ----------------------------
# One row per write method and one per flush interval of a bench-writes.json; host,
# versions and settings are in sources.meta. run_id is the bench id.
BENCH_DDL = """
CREATE TABLE bench_write_methods (
    source_id    BIGINT NOT NULL,
    run_id       VARCHAR,
    method       VARCHAR NOT NULL,     -- single | executemany | multirow | copy | upsert
    rows         BIGINT NOT NULL,      -- rows per repetition, counted in PostgreSQL after each
    seconds      DOUBLE NOT NULL,      -- median over the repetitions
    rows_per_s   DOUBLE NOT NULL,      -- rows / seconds
    x_single     DOUBLE,               -- rows_per_s / single's; NULL when single was not run
    reps_seconds DOUBLE[],             -- every repetition, in run order
    description  VARCHAR,
    reps         INTEGER               -- len(reps_seconds)
);
CREATE TABLE bench_flush_intervals (
    source_id             BIGINT NOT NULL,
    run_id                VARCHAR,
    interval_s            DOUBLE NOT NULL,  -- the service's FLUSH_INTERVAL_S
    e2e_latency_p95_ms    DOUBLE NOT NULL,  -- p95 of written_at - accepted_at over the run's rows
    db_writes_per_s       DOUBLE NOT NULL,  -- flush transactions per second of k6 load
    records_per_s         DOUBLE NOT NULL,  -- rows written / duration_s
    duration_s            DOUBLE,           -- k6's constant-arrival-rate duration
    record_rate           DOUBLE,           -- requested POST /records per second
    records_written       BIGINT,
    flushes               BIGINT,           -- counters.flushes delta over the k6 run
    write_transactions    BIGINT,           -- distinct written_at: transactions that wrote the rows
    records_per_flush     DOUBLE,
    e2e_latency_p50_ms    DOUBLE,
    e2e_latency_max_ms    DOUBLE,
    post_p95_ms           DOUBLE,           -- k6 http_req_duration p(95): what a client waits
    post_p50_ms           DOUBLE,
    k6_requests           BIGINT,
    k6_failed_rate        DOUBLE,
    k6_dropped_iterations BIGINT
);
"""

# --- a service's own metrics (perflab/ingest/prometheus*.py, expvar.py, process_csv.py) ----
# One row per sample of any metrics format: Prometheus text/OpenMetrics scrapes, the
# Prometheus HTTP API's results, Go expvar series, process CPU/RSS samples. ``name`` is the
# sample's own name (``x_bucket``, ``x_sum``, ``x_count`` of a histogram ``x``), ``family``
# the metric it belongs to, ``labels`` a JSON object with sorted keys (``le`` and
# ``quantile`` included), so that (name, labels) is a series. Values keep NaN and ±Inf.
# Version 2 added these tables (MIGRATIONS[1] in store.py).
METRICS_DDL = """
CREATE TABLE metric_samples (
    source_id BIGINT NOT NULL,
    run_id    VARCHAR,
    t         TIMESTAMPTZ,           -- its own timestamp, else its scrape's; NULL: unknown
    name      VARCHAR NOT NULL,
    family    VARCHAR NOT NULL,
    type      VARCHAR NOT NULL,      -- counter, gauge, histogram, summary, untyped (OpenMetrics: info, ...)
    labels    JSON NOT NULL,         -- {} when none
    value     DOUBLE NOT NULL,
    exemplar  JSON                   -- OpenMetrics exemplar {labels, value, timestamp}; NULL when none
);
-- Which metric plays which role (perflab.analysis.roles) in a run, as the user mapped it
-- (`perflab ingest --run R --role ROLE=METRIC`, a target file's [roles]).
CREATE TABLE run_roles (
    run_id VARCHAR NOT NULL,
    role   VARCHAR NOT NULL,
    metric VARCHAR NOT NULL,         -- a family or sample name, optionally with {label="value",...}
    PRIMARY KEY (run_id, role)
);
"""

# A run's headline numbers (perflab.analysis.runs), kept so that `perflab runs` reads a year
# of nights at once; `fingerprint` says what they were computed from (the run's row, its
# sources, its role mappings), so a change to any of those recomputes them.
SUMMARIES_DDL = """
CREATE TABLE run_summaries (
    run_id      VARCHAR PRIMARY KEY,
    fingerprint VARCHAR NOT NULL,
    summary     JSON NOT NULL,
    computed_at TIMESTAMPTZ NOT NULL
);
"""

# k6's default end-of-test summary of a k6 NDJSON/CSV source (perflab.analysis.k6_stored), so
# that `perflab k6 SOURCE` reads one row rather than every point; `fingerprint` says what it
# was computed from (the source, the k6 files of its run). Forgetting the source removes it.
# Version 4 added it (MIGRATIONS[3] in store.py).
K6_SUMMARIES_DDL = """
CREATE TABLE k6_summaries (
    source_id   BIGINT PRIMARY KEY,
    fingerprint VARCHAR NOT NULL,
    summary     VARCHAR NOT NULL,      -- JSON as Python writes it: NaN stays NaN (JSON has none)
    computed_at TIMESTAMPTZ NOT NULL
);
"""

DDL = [CORE_DDL, PPROF_DDL, CPROFILE_DDL, K6_DDL, PG_DDL, RESOURCES_DDL, BENCH_DDL, METRICS_DDL, SUMMARIES_DDL,
       K6_SUMMARIES_DDL]


def block_statements(block: str) -> list[str]:
    """The CREATE statements of one DDL block."""
    # Comments go first, so a ';' or ',' inside one cannot split or break a statement.
    text = "\n".join(ln.split("--", 1)[0].rstrip() for ln in block.splitlines())
    return [stmt.strip() for stmt in text.split(";") if stmt.strip()]


def statements() -> list[str]:
    """Every CREATE statement of the current schema, in order."""
    return [stmt for block in DDL for stmt in block_statements(block)]
