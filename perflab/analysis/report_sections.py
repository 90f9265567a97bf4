"""The sections of a run's load-test report, as types (what ``perflab report --json`` prints).

perflab.analysis.run_report fills them; perflab.analysis.assessment judges them;
perflab.report renders them. A section the run has no data for is an
:class:`Unavailable` with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from perflab.analysis.alerts import AlertResult
from perflab.analysis.capacity import Capacity
from perflab.analysis.compare import MetricRow
from perflab.jsonable import optional


@dataclass
class Unavailable:
    """A section the run has no data for, and why."""

    reason: str


@dataclass
class RunHeader:
    run_id: str
    scenario: str | None
    variant: str | None
    status: str
    started_at: str
    settings: dict[str, Any]
    rate: float | None
    duration_s: float | None
    signature: str | None
    profile: dict[str, Any]  # the manifest's record of the steady-state profile
    host: dict[str, Any]


@dataclass
class WindowInfo:
    """The steady window in seconds from the run's first sample."""

    start_s: float
    end_s: float
    span_s: float
    method: str


@dataclass
class EndpointStats:
    requests: float | None
    rps: float | None
    p50_ms: float | None
    p90_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    avg_ms: float | None
    error_rate: float | None
    failed: float | None


@dataclass
class CheckCount:
    check: str
    passes: int
    fails: int


@dataclass
class RequestMetrics:
    source_id: int
    duration_s: float | None
    duration_source: str | None
    overall: EndpointStats
    endpoints: dict[str, EndpointStats]
    dropped_iterations: int  # k6 writes dropped_iterations only when it drops one: none is zero
    iterations: float | None
    checks: list[CheckCount]
    checks_passes: float | None
    checks_fails: float | None
    checks_rate: float | None
    thresholds_crossed: list[str]


@dataclass
class RoleUsage:
    role: str
    samples: int
    cpu_p50: float | None
    cpu_p95: float | None
    cpu_mean: float | None
    cpu_max: float | None
    rss_p50: float | None
    rss_max: float | None
    threads_max: float | None


@dataclass
class ResourceUsage:
    """CPU (% of one core) and RSS per role over the steady window."""

    roles: list[RoleUsage]
    cores: int | None
    over: str
    reason: str | None = optional()

    def role(self, name: str) -> RoleUsage | None:
        return next((r for r in self.roles if r.role == name), None)


@dataclass
class CategoryShares:
    shares: dict[str, float]
    top_frames: dict[str, str | None]
    unattributed: float | None


@dataclass
class CpuProfile:
    source_id: int
    path: str
    format: str
    sample_type: str
    unit: str
    total: float
    functions: int
    flat: list[dict[str, Any]]  # profiles.top rows: name, flat, flat_pct, cum, cum_pct
    cum: list[dict[str, Any]]
    categories: CategoryShares
    duration_s: float | None = optional()  # a pprof profile's own duration
    samples: int | None = None  # samples taken (None: a cProfile dump, which counts calls)
    cpu_s: float | None = None  # the CPU time the profile holds
    too_small: str | None = None  # why it cannot rank functions (assessment.profile_too_small), or None


@dataclass
class EndpointCpu:
    """CPU milliseconds per request by endpoint: the CPU profile's value per route label
    over k6's requests of that endpoint (perflab.analysis.tag_cost.cpu_per_request)."""

    source_id: int  # the CPU profile
    k6_source_id: int
    key: str  # the label naming the endpoint (route, endpoint, handler...)
    sample_type: str
    total_cpu_ms: float
    unlabelled_cpu_ms: float  # CPU in samples without the label (GC, background work)
    matched_by: str  # how k6's requests were matched: "tag KEY" or "name"
    requests_over: str  # "the profile's window" or "the whole test"
    rows: list[dict[str, Any]]  # endpoint, cpu_ms, cpu_pct, requests, cpu_ms_per_request, k6_names
    unmatched: list[str]  # label values no k6 request matched


@dataclass
class HeapProfile:
    source_id: int
    path: str
    sample_type: str
    unit: str
    total: float
    totals: dict[str, float]
    rows: list[dict[str, Any]]
    functions: int


@dataclass
class ReportFinding:
    signature: str
    verdict: str
    evidence: dict[str, Any]
    recommendation: str | None
    key_evidence: dict[str, Any]  # what the report's table shows (at most MAX_EVIDENCE_ITEMS)


@dataclass
class SignaturesSection:
    findings: list[ReportFinding]


@dataclass
class AlertsSection:
    rules: list[dict[str, Any]]
    results: list[AlertResult]


@dataclass
class RunComparison:
    """This run (B) against another (A): its default ↔ fixed twin when it has one, else the
    previous run of its scenario and variant. Both are named when both exist."""

    against: str  # the run compared with (A)
    relation: str  # what A is to this run: "fixed twin", "default twin" or "previous run"
    metrics: list[MetricRow]
    profile: list[dict[str, Any]]
    profile_note: str | None
    rule: str  # when a change is beyond noise (perflab.analysis.compare)
    twin: str | None = None
    previous: str | None = None
    profile_unit: str | None = None  # the profile rows' values are profile_unit per profile_per
    profile_per: str | None = None


@dataclass
class NoComparison:
    reason: str
    against: None = None


@dataclass
class SourceRow:
    source_id: int
    kind: str
    path: str
    bytes: int


@dataclass
class ChartEntry:
    """A figure of the report: drawn, or not and why; ``png`` once exported."""

    name: str
    section: str
    div_id: str
    drawn: bool = False
    title: str = ""
    reason: str | None = None
    png: str | None = None


@dataclass
class Item:
    title: str
    detail: str


@dataclass
class Assessment:
    strengths: list[Item] = field(default_factory=list)
    areas: list[Item] = field(default_factory=list)


@dataclass
class RunReport:
    run: RunHeader
    window: WindowInfo | None
    perflab_version: str
    requests: RequestMetrics | Unavailable
    resources: ResourceUsage
    cpu_profile: CpuProfile | Unavailable
    heap_profile: HeapProfile | Unavailable
    signatures: SignaturesSection
    alerts: AlertsSection
    capacity: Capacity
    assessment: Assessment
    comparison: RunComparison | NoComparison
    sources: list[SourceRow]
    charts: list[ChartEntry] = field(default_factory=list)
    endpoint_cpu: EndpointCpu | Unavailable = field(default_factory=lambda: Unavailable("not computed"))
