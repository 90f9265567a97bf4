"""The words ingest and analysis share: source kinds, k6's built-in metrics, process roles.

A format module registers a kind under one of these names; an analysis looks sources up
by the same names. Both import them from here, so neither imports the other.
"""

from __future__ import annotations

# -- source kinds (the `sources.kind` column) -----------------------------------------------
PPROF = "pprof"
CPROFILE = "cprofile"
K6 = "k6"  # `--out json` NDJSON
K6_CSV = "k6-csv"  # `--out csv`
K6_SUMMARY = "k6-summary"  # `--summary-export` or `handleSummary()` JSON
PGSTAT = "pgstat"
RESOURCES = "resources"  # the lab sampler's JSONL
SERVICE_VARS = "service-vars"  # the lab sampler's /debug/vars JSONL
BENCH_WRITES = "bench-writes"
# A service's own metrics, all read into metric_samples.
PROMETHEUS = "prometheus"  # text exposition 0.0.4 or OpenMetrics: one scrape or a series of scrapes
PROMETHEUS_API = "prometheus-api"  # the HTTP API's /api/v1/query(_range) JSON
EXPVAR = "expvar"  # Go's /debug/vars: one object, or NDJSON of objects with a time key
PROCESS_SAMPLES = "process-samples"  # time,cpu...,rss_bytes CSV
METRIC_KINDS = (PROMETHEUS, PROMETHEUS_API, EXPVAR, PROCESS_SAMPLES)
# Stack profiles other tools write, read into the pprof tables (so every profile view reads them).
COLLAPSED = "collapsed"  # folded stacks: py-spy --format raw, FlameGraph stackcollapse-*, async-profiler
SPEEDSCOPE = "speedscope"  # speedscope's file format (py-spy, and many profilers' exporters)

# The k6 kinds that hold every sample (the same samples in two encodings), and all three.
K6_POINT_KINDS = (K6, K6_CSV)
K6_KINDS = (K6, K6_CSV, K6_SUMMARY)
# Profiles held in the pprof tables (profile.proto and the stack formats converted into them).
PPROF_SHAPED_KINDS = (PPROF, COLLAPSED, SPEEDSCOPE)
PROFILE_KINDS = (*PPROF_SHAPED_KINDS, CPROFILE)

# k6 v1.1.0's built-in metrics: (type, contains). A CSV carries no Metric lines and a
# summary-export no types, so these fill in what the file does not say.
K6_BUILTIN_METRICS: dict[str, tuple[str, str]] = {
    "checks": ("rate", "default"),
    "data_received": ("counter", "data"),
    "data_sent": ("counter", "data"),
    "dropped_iterations": ("counter", "default"),
    "group_duration": ("trend", "time"),
    "http_req_blocked": ("trend", "time"),
    "http_req_connecting": ("trend", "time"),
    "http_req_duration": ("trend", "time"),
    "http_req_failed": ("rate", "default"),
    "http_req_receiving": ("trend", "time"),
    "http_req_sending": ("trend", "time"),
    "http_req_tls_handshaking": ("trend", "time"),
    "http_req_waiting": ("trend", "time"),
    "http_reqs": ("counter", "default"),
    "iteration_duration": ("trend", "time"),
    "iterations": ("counter", "default"),
    "vus": ("gauge", "default"),
    "vus_max": ("gauge", "default"),
    "ws_connecting": ("trend", "time"),
    "ws_msgs_received": ("counter", "default"),
    "ws_msgs_sent": ("counter", "default"),
    "ws_ping": ("trend", "time"),
    "ws_session_duration": ("trend", "time"),
    "ws_sessions": ("counter", "default"),
    "grpc_req_duration": ("trend", "time"),
    "grpc_streams": ("counter", "default"),
    "grpc_streams_msgs_received": ("counter", "default"),
    "grpc_streams_msgs_sent": ("counter", "default"),
}
K6_METRIC_TYPES = ("counter", "gauge", "rate", "trend")

# -- process roles of a run (the `resource_samples.role` column) ------------------------------
# The order is how tables and charts list them: the service first, the machine last.
ROLES = ("service", "postgres", "k6", "host")

# -- profile sample types ----------------------------------------------------------------------
# Heap profiles are recognised by their sample types (Go's heap/allocs profiles).
HEAP_TYPES = ("inuse_space", "alloc_space", "space")

# -- a service's signals by role (perflab.analysis.roles) -----------------------------------------
# What a diagnosis reads from a service's metrics, whatever the service calls them: each role
# is a counter (read as increases and rates, resets handled) or a gauge (read as levels).
SIGNAL_ROLES: dict[str, str] = {
    "requests": "counter",            # requests the service answered
    "errors": "counter",              # failed requests, by kind (a label)
    "in_flight": "gauge",             # requests being served
    "downstream_calls": "counter",    # database queries or dependency calls, retries included
    "retries": "counter",
    "pool_size": "gauge",             # the connection pool's capacity
    "pool_in_use": "gauge",
    "pool_waiting": "gauge",          # tasks waiting for a connection
    "pool_wait_count": "counter",     # waits for a connection (database/sql's WaitCount)
    "pool_wait_seconds": "counter",   # total time waited (WaitDuration): its rate is the mean waiters
    "tasks": "gauge",                 # goroutines, threads or event-loop handles
    "cpu_seconds": "counter",         # the process's CPU time
    "rss_bytes": "gauge",
    "heap_inuse_bytes": "gauge",
    "gc_pause_seconds": "counter",    # total GC pause time
    "event_loop_lag_seconds": "gauge",
    # The tuning guide's BufferSizeHigh alert: a write buffer's depth and its limit.
    "buffer_depth": "gauge",
    "buffer_limit": "gauge",
}

# A series of scrapes concatenated in one file marks each scrape's time with this comment
# (unix seconds or RFC 3339), as `echo "# scrape_timestamp $(date +%s.%N)"; curl .../metrics`
# in a loop writes it; the lab writes its scrapes the same way.
SCRAPE_TIMESTAMP_COMMENT = "# scrape_timestamp"

# The sample service's /debug/vars keys by role, as perflab's lab sampled them into
# `service-vars` files (perflab 0.1). Such a file is always the sample service's, so its
# run reads them through these roles (the ingest records them; the 1 → 2 migration records
# them for runs already stored).
SAMPLE_SERVICE_VARS_ROLES = {
    "requests": "counters.requests_total",
    "errors": "counters.errors",
    "in_flight": "gauges.in_flight_requests",
    "downstream_calls": "counters.db_queries",
    "retries": "counters.retries",
    "pool_size": "gauges.pool_size",
    "pool_in_use": "gauges.pool_checked_out",
    "pool_waiting": "gauges.db_waiting_tasks",
    "buffer_depth": "gauges.buffer_depth",
    "buffer_limit": "settings.buffer_limit",
}
