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

# The k6 kinds that hold every sample (the same samples in two encodings), and all three.
K6_POINT_KINDS = (K6, K6_CSV)
K6_KINDS = (K6, K6_CSV, K6_SUMMARY)
PROFILE_KINDS = (PPROF, CPROFILE)

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
