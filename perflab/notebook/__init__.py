"""What the notebooks in notebooks/ share, so that each of their cells stays one call.

The notebooks hold parameters, narrative and calls (``from perflab import notebook as nh``);
what a call needs beyond perflab.analysis and perflab.report.charts lives here, where it
is tested: setup (the store and the bundled samples), subjects (what a run id stands for),
display (show a figure or say why not), tables, and the evidence charts of the doctor's
findings. This is an edge of the package, like the CLI: it may ingest (the bundled
samples, a profile file given as a parameter).
"""

from perflab.notebook.display import call, print_table, show, text
from perflab.notebook.evidence import EVIDENCE_CHARTS, evidence, evidence_list, show_evidence
from perflab.notebook.explorer import Explorer, View, explorer, panes, profile_choices
from perflab.notebook.setup import (
    DEFAULT_RENDERER,
    SAMPLE_GROUPS,
    TEXT_CELL_CHARS,
    ParameterError,
    Samples,
    check_parameters,
    ingest_samples,
    report_path,
    resolve_store_path,
    sample_path,
    set_renderer,
    setup,
)
from perflab.notebook.subjects import (
    MAX_RUNS_SHOWN,
    Missing,
    Subject,
    latest_pair,
    latest_runs,
    load_run,
    pick_pair,
    profile_pair,
    profile_source,
    run_subject,
    sample_subject,
    subject,
)
from perflab.notebook.tables import (
    COMPARISON_COLUMNS,
    K6_STATS,
    activity_summary,
    categories_table,
    compare,
    comparison_table,
    diagnose_all,
    k6_table,
    optimization_entry,
    runs_table,
    sample_types_table,
    signatures_table,
    sources_table,
    top_table,
    verdict_summary,
    verdict_table,
)
from perflab.paths import project_root
from perflab.report.charts import activity_states_chart

__all__ = [
    "COMPARISON_COLUMNS", "DEFAULT_RENDERER", "EVIDENCE_CHARTS", "K6_STATS", "MAX_RUNS_SHOWN", "Missing",
    "SAMPLE_GROUPS", "Samples", "Subject", "TEXT_CELL_CHARS", "activity_states_chart", "activity_summary", "call",
    "categories_table", "compare", "comparison_table", "diagnose_all", "evidence", "evidence_list", "ingest_samples",
    "k6_table", "latest_pair", "latest_runs", "load_run", "optimization_entry", "pick_pair", "print_table",
    "profile_pair", "profile_source", "project_root", "resolve_store_path", "run_subject", "runs_table", "sample_path",
    "sample_subject", "sample_types_table", "setup", "show", "show_evidence", "signatures_table", "sources_table",
    "subject", "text", "top_table", "verdict_summary", "verdict_table",
    "ParameterError", "check_parameters", "report_path", "set_renderer",
    "Explorer", "View", "explorer", "panes", "profile_choices",
]
