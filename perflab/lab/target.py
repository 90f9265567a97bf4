"""A target: the service a run puts under load, what loads it and what to collect from it.

``perflab run --target FILE.toml`` reads one from a TOML file (stdlib ``tomllib``); the
lab's scenarios build one for the bundled sample service (perflab.lab.sample). Either
way perflab.lab.runner runs it, so a lab run and a run against a user's service go
through one code path. The file, every key optional unless marked::

    name = "orders"                  # run ids and `perflab runs` (default: the file's stem,
                                     #   or its folder's name when the file is target.toml)
    description = "..."              # what the service does under this load (the manifest's `why`)

    [service]
    url = "http://127.0.0.1:8080"    # required; k6 gets it as BASE_URL
    start = ["./orders", "-addr", "127.0.0.1:8080"]  # perflab starts it (cwd = the file's folder)
    ready = "/healthz"               # readiness path (or URL), polled until it answers 200
    pid = 1234                       # the process to sample when perflab did not start it
    env = { POOL_SIZE = "4" }        # the started service's environment (added to perflab's)

    [load]
    script = "load.js"               # required; the k6 script, relative to the file's folder
    env = { PAGE = "16" }            # k6's environment (besides BASE_URL, DURATION, RATE)
    rate = 20                        # RATE when --rate is not given (else RATE is left unset)

    [profiles]
    pprof = "/debug/pprof"           # Go net/http/pprof base: CPU over the steady state,
                                     #   the snapshots in its middle
    snapshots = ["heap", "goroutine", "block", "mutex"]   # the default
    pyspy = true                     # py-spy on the service's PID over the same window

    [metrics]
    url = "/metrics"                 # Prometheus text or expvar JSON, scraped once a second

    [roles]                          # SIGNAL_ROLE = "metric name", for names perflab
    downstream_calls = "report_dependency_calls_total"   # does not recognise by itself

    [postgres]
    dsn = "postgresql://app@127.0.0.1:5432/app"   # pg_stat snapshots, pg_stat_activity samples

    [variants.fixed]                 # `--variant fixed`: this env on top of the defaults
    env = { POOL_SIZE = "20" }       #   (the service's when perflab starts it, and k6's)
    description = "a pool as large as the arrival rate needs"

Paths (``ready``, ``pprof``, ``metrics.url``) are joined to the service URL; a full URL
is used as is (a Go service often serves pprof on a port of its own). A bad file is
refused with one line naming the file, the key and the problem (exit 2). The manifest
keeps the file's text verbatim: keep passwords out of it (PGPASSWORD, ~/.pgpass).
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import socket
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from perflab.analysis.metrics import parse_selector
from perflab.errors import PerflabError
from perflab.vocab import SIGNAL_ROLES

DEFAULT_VARIANT = "default"
# Go's net/http/pprof profiles that are a snapshot of a moment (CPU covers a window).
PPROF_SNAPSHOTS = ("heap", "allocs", "goroutine", "block", "mutex", "threadcreate")
DEFAULT_SNAPSHOTS = ("heap", "goroutine", "block", "mutex")
# Names go into run ids and file names: keep them to what needs no quoting anywhere.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_KEYS: dict[str | None, tuple[str, ...]] = {
    None: ("name", "description", "service", "load", "profiles", "metrics", "roles", "postgres", "variants"),
    "service": ("url", "start", "ready", "pid", "env"),
    "load": ("script", "env", "rate"),
    "profiles": ("pprof", "pyspy", "snapshots"),
    "metrics": ("url",),
    "postgres": ("dsn",),
    "variant": ("env", "description"),
}


@dataclass(frozen=True)
class Service:
    url: str  # scheme://host:port[/base]; k6's BASE_URL
    start: tuple[str, ...] = ()  # argv; empty: the service runs already
    ready: str | None = None  # an absolute URL
    pid: int | None = None
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Load:
    script: Path  # absolute
    env: Mapping[str, str] = field(default_factory=dict)
    rate: float | None = None


@dataclass(frozen=True)
class Profiles:
    pprof: str | None = None  # the net/http/pprof base URL, absolute
    snapshots: tuple[str, ...] = DEFAULT_SNAPSHOTS
    pyspy: bool = False


@dataclass(frozen=True)
class Variant:
    name: str
    env: Mapping[str, str] = field(default_factory=dict)
    description: str | None = None


@dataclass(frozen=True)
class Target:
    name: str
    service: Service
    load: Load
    folder: Path  # the started service's cwd
    profiles: Profiles = field(default_factory=Profiles)
    metrics_url: str | None = None  # absolute
    roles: Mapping[str, str] = field(default_factory=dict)
    postgres_dsn: str | None = None
    variants: Mapping[str, Variant] = field(default_factory=dict)
    description: str | None = None
    signature: str | None = None  # the lab's scenarios say which signature they reproduce
    # The file it was read from (None for the lab's scenarios, built in Python).
    path: Path | None = None
    text: str | None = None
    sha256: str | None = None

    def variant(self, name: str) -> Variant:
        """The named variant; ``default`` is the file as written."""
        if name == DEFAULT_VARIANT:
            return Variant(DEFAULT_VARIANT)
        if name not in self.variants:
            known = ", ".join([DEFAULT_VARIANT, *sorted(self.variants)])
            raise PerflabError(f"{self.name}: unknown variant {name!r}: one of {known}")
        return self.variants[name]

    @property
    def starts_service(self) -> bool:
        return bool(self.service.start)

    @property
    def host(self) -> str:
        return urlsplit(self.service.url).hostname or ""

    @property
    def port(self) -> int:
        parts = urlsplit(self.service.url)
        return parts.port or (443 if parts.scheme == "https" else 80)

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or a name that resolves only to them (``localhost``)."""
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        addrs = {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return bool(addrs) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addrs)


def join_url(base: str, path_or_url: str) -> str:
    """A path joined to the service URL (keeping the URL's own base path); a URL as is."""
    if "://" in path_or_url:
        return path_or_url
    return urljoin(base.rstrip("/") + "/", path_or_url.lstrip("/"))


# -- reading a file ---------------------------------------------------------------------------

def load(path: str | Path) -> Target:
    """Read and check a target file; a PerflabError (exit 2) names the file, key and problem."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise PerflabError(f"{p}: cannot read the target file: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
        raw = tomllib.loads(text)
    except UnicodeDecodeError:
        raise PerflabError(f"{p}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise PerflabError(f"{p}: not valid TOML: {exc}") from None
    target = parse(raw, p.resolve().parent, where=str(p), default_name=_default_name(p))
    return replace(target, path=p.resolve(), text=text, sha256=hashlib.sha256(data).hexdigest())


def _default_name(p: Path) -> str:
    stem = p.stem if p.name != "target.toml" else p.resolve().parent.name
    return re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-.") or "target"


def parse(raw: Mapping[str, Any], folder: Path, where: str = "target",
          default_name: str = "target") -> Target:
    """A Target from parsed TOML (``where`` names the file in errors; paths are relative to folder)."""
    c = _Checker(where)
    c.known(raw, None)
    name = c.string(raw, "name", default_name)
    if not _NAME.match(name):
        c.fail("name", f"{name!r} must be letters, digits, '.', '_' or '-' (at most 63)")

    svc = c.table(raw, "service", required=True)
    c.known(svc, "service")
    url = c.string(svc, "url", None, key="[service] url")
    if url is None:
        c.fail("[service] url", "missing (the service's base URL, e.g. http://127.0.0.1:8080)")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        c.fail("[service] url", f"{url!r} is not an http:// or https:// URL with a host")
    try:
        _ = parts.port
    except ValueError:
        c.fail("[service] url", f"{url!r} has a bad port")
    start = c.argv(svc, "start")
    pid = c.integer(svc, "pid")
    if pid is not None and pid <= 0:
        c.fail("[service] pid", f"{pid} is not a process id")
    if start and pid is not None:
        c.fail("[service] pid", "give start (perflab starts the service) or pid (it runs already), not both")
    if svc.get("env") and not start:
        c.fail("[service] env", "perflab sets the environment only of a service it starts (give start)")
    service = Service(url=url, start=start, ready=c.url_or_path(svc, "ready", url, "[service] ready"), pid=pid,
                      env=c.env(svc, "env", "[service] env"))

    ld = c.table(raw, "load", required=True)
    c.known(ld, "load")
    script = c.string(ld, "script", None, key="[load] script")
    if not script:
        c.fail("[load] script", "missing (the k6 script, relative to the target file)")
    script_path = (folder / script).resolve()
    if not script_path.is_file():
        c.fail("[load] script", f"{script}: no such file (looked in {folder})")
    rate = c.number(ld, "rate", "[load] rate")
    if rate is not None and rate <= 0:
        c.fail("[load] rate", f"{rate:g} must be above 0")
    load_ = Load(script=script_path, env=c.env(ld, "env", "[load] env"), rate=rate)

    prof = c.table(raw, "profiles")
    c.known(prof, "profiles")
    snapshots = c.strings(prof, "snapshots", "[profiles] snapshots")
    for s in snapshots or ():
        if s not in PPROF_SNAPSHOTS:
            c.fail("[profiles] snapshots", f"{s!r} is not one of {', '.join(PPROF_SNAPSHOTS)}")
    pyspy = prof.get("pyspy", False)
    if not isinstance(pyspy, bool):
        c.fail("[profiles] pyspy", "must be true or false")
    profiles = Profiles(pprof=c.url_or_path(prof, "pprof", url, "[profiles] pprof"),
                        snapshots=DEFAULT_SNAPSHOTS if snapshots is None else tuple(snapshots), pyspy=pyspy)

    met = c.table(raw, "metrics")
    c.known(met, "metrics")
    metrics_url = c.url_or_path(met, "url", url, "[metrics] url")

    roles_raw = c.table(raw, "roles")
    roles: dict[str, str] = {}
    for role, metric in roles_raw.items():
        if role not in SIGNAL_ROLES:
            c.fail(f"[roles] {role}", f"not a role; one of {', '.join(SIGNAL_ROLES)}")
        if not isinstance(metric, str) or not metric.strip():
            c.fail(f"[roles] {role}", "must be a metric name (a non-empty string)")
        try:  # checked here, as `ingest --role` checks it: the doctor reads it later
            parse_selector(metric.strip())
        except ValueError as exc:
            c.fail(f"[roles] {role}", str(exc))
        roles[role] = metric.strip()

    pg = c.table(raw, "postgres")
    c.known(pg, "postgres")
    dsn = c.string(pg, "dsn", None, key="[postgres] dsn")
    if dsn is not None and "://" in dsn and dsn.split("://", 1)[0] not in ("postgres", "postgresql",
                                                                          "postgresql+psycopg"):
        c.fail("[postgres] dsn", "not a PostgreSQL URL (postgresql://user@host:port/db) or libpq keywords")

    variants: dict[str, Variant] = {}
    for vname, vraw in c.table(raw, "variants").items():
        key = f"[variants.{vname}]"
        if not isinstance(vraw, dict):
            c.fail(key, "must be a table (env = {...})")
        if vname == DEFAULT_VARIANT:
            c.fail(key, "'default' is the file as written; name the variant otherwise")
        if not _NAME.match(vname):
            c.fail(key, "a variant's name must be letters, digits, '.', '_' or '-'")
        c.known(vraw, "variant", key)
        variants[vname] = Variant(vname, env=c.env(vraw, "env", f"{key} env"),
                                  description=c.string(vraw, "description", None, key=f"{key} description"))

    return Target(name=name, service=service, load=load_, folder=folder, profiles=profiles,
                  metrics_url=metrics_url, roles=roles, postgres_dsn=dsn or None, variants=variants,
                  description=c.string(raw, "description", None))


class _Checker:
    """Type checks that raise one line: FILE: KEY: PROBLEM."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, key: str, problem: str) -> Any:
        raise PerflabError(f"{self.where}: {key}: {problem}")

    def known(self, table: Mapping[str, Any], section: str | None, label: str | None = None) -> None:
        allowed = _KEYS[section]
        for key in table:
            if key not in allowed:
                where = label or (f"[{section}]" if section else "top level")
                self.fail(f"{where} {key}" if section else key,
                          f"unknown key in the {where}; known: {', '.join(allowed)}")

    def table(self, raw: Mapping[str, Any], key: str, required: bool = False) -> dict[str, Any]:
        value = raw.get(key)
        if value is None:
            if required:
                self.fail(f"[{key}]", "missing")
            return {}
        if not isinstance(value, dict):
            self.fail(key, "must be a table")
        return dict(value)

    def string(self, raw: Mapping[str, Any], name: str, default: Any, key: str | None = None) -> Any:
        value = raw.get(name, default)
        if value is not default and not isinstance(value, str):
            self.fail(key or name, f"must be a string, not {_tname(value)}")
        return value

    def integer(self, raw: Mapping[str, Any], name: str) -> int | None:
        value = raw.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            self.fail(f"[service] {name}", f"must be an integer, not {_tname(value)}")
        return value

    def number(self, raw: Mapping[str, Any], name: str, key: str) -> float | None:
        value = raw.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(key, f"must be a number, not {_tname(value)}")
        return float(value)

    def strings(self, raw: Mapping[str, Any], name: str, key: str) -> list[str] | None:
        value = raw.get(name)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(key, "must be a list of strings")
        return list(value)

    def argv(self, raw: Mapping[str, Any], name: str) -> tuple[str, ...]:
        value = raw.get(name)
        if value is None:
            return ()
        if isinstance(value, str):
            self.fail(f"[service] {name}", "must be a list of strings (the command and its arguments), "
                                           f"e.g. [{', '.join(repr(w) for w in value.split())}]")
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            self.fail(f"[service] {name}", "must be a non-empty list of non-empty strings")
        return tuple(value)

    def env(self, raw: Mapping[str, Any], name: str, key: str) -> dict[str, str]:
        value = raw.get(name)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(key, "must be a table of NAME = value")
        out: dict[str, str] = {}
        for k, v in value.items():
            if not _ENV_KEY.match(k):
                self.fail(f"{key} {k}", "not an environment variable name")
            if isinstance(v, bool):
                out[k] = "true" if v else "false"
            elif isinstance(v, (str, int, float)):
                out[k] = str(v)
            else:
                self.fail(f"{key} {k}", f"must be a string or a number, not {_tname(v)}")
        return out

    def url_or_path(self, raw: Mapping[str, Any], name: str, base: str, key: str) -> str | None:
        value = self.string(raw, name, None, key=key)
        if value is None:
            return None
        if "://" in value:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                self.fail(key, f"{value!r} is not an http:// or https:// URL")
            return str(value)
        if not value.startswith("/"):
            self.fail(key, f"{value!r} must be a path starting with '/' or a full URL")
        return join_url(base, value)


def _tname(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__)
