"""Hot-frame categories: how much of a profile went to hashing, serialization, regex,
GC/allocation, locks and waits, network and syscalls, the database driver, or other.

The attribution rule (deterministic, one category per sample)::

    stack (leaf first)                              first match from the leaf   category
    runtime.memmove <- crypto/sha256.block <- main.handler  crypto/sha256.block      hashing
    bcrypt._bcrypt.checkpw <- app.login                     bcrypt._bcrypt.checkpw   hashing
    json.encoder.iterencode <- psycopg.execute              json.encoder.iterencode  serialization
    syscall.Syscall <- database/sql.(*DB).Query             syscall.Syscall          network
    main.parse <- main.handler                              (none)                   other

* A sample's value goes to the category of the **first frame, walking from the leaf
  towards the root, that matches any rule**; a stack with no matching frame is
  ``other``. So the C call of bcrypt under a Python handler counts as hashing, a JSON
  encoder inside a database driver counts as serialization, and the socket read under
  the driver counts as network: the leaf-most recognised frame says what the CPU (or the
  wait) was actually doing.
* A frame matching several rules takes the first rule of :data:`RULES` (registry order).
* Samples without frames belong to no category: their share is ``unattributed``, so
  the category shares sum to 1 − unattributed (≤ 1).
* Shares are of pprof's total (the sum of |value| over all samples, ``go tool pprof``'s
  "of X total"). Delta profiles with negative values give signed shares.
* cProfile keeps no stacks: each function's ``tottime`` (self time) goes to the
  function's own category, and shares are of pstats' ``total_tt``.

Frame names are pprof's function names (Go: ``crypto/sha256.block``,
``sync.(*Mutex).Lock``; Python pprof: ``json.encoder.JSONEncoder.encode``) or pstats'
std names, which are first turned into a module-qualified name
(``/usr/lib/python3.11/json/encoder.py:205(iterencode)`` → ``json.encoder.iterencode``)
so that one rule serves both and a project directory named ``json-tools`` matches nothing.

Rules match only frames that *do* the work or *are* the wait (a hash function, a
``chanrecv``), never entry points that sit above other work (``net/http.(*conn).serve``,
``sync.(*Once).Do``, the asyncio event loop): under the leaf-first rule such a frame
would swallow every uncategorised frame below it.
"""

from __future__ import annotations

import functools
import itertools
import os
import re
from dataclasses import dataclass
from typing import Any

import polars as pl

from perflab.analysis.pprof_view import source_total
from perflab.analysis.profiles import resolve_sample_type
from perflab.analysis.pstats import cprofile_top
from perflab.errors import PerflabError
from perflab.store import Store
from perflab.vocab import CPROFILE, PROFILE_KINDS

OTHER = "other"
_counter = itertools.count()
# A category's top frames in the answer: enough to name the culprits, short enough to read.
TOP_FRAMES_PER_CATEGORY = 5


@dataclass(frozen=True)
class Rule:
    category: str
    pattern: re.Pattern[str]


def _r(category: str, pattern: str, flags: int = 0) -> Rule:
    return Rule(category, re.compile(pattern, flags))


# The registry. Order matters only for a frame that matches two rules (the first wins);
# a new category is one more entry. Every entry says why it is there.
RULES: tuple[Rule, ...] = (
    # Go's crypto packages (sha256, hmac, bcrypt in x/crypto, ...): CPU-bound hashing and
    # ciphers. crypto/tls is protocol work, listed under network.
    _r("hashing", r"^(crypto/(?!tls\.)|golang\.org/x/crypto/)"),
    # Python and C hashing by library or algorithm name: bcrypt (a C call under Python),
    # hashlib's pbkdf2_hmac/sha256, hmac, scrypt, argon2, md5; also Go user code named so
    # (main.pbkdf2SHA256); bcrypt's own cipher as py-spy --native names its Rust frames
    # (blowfish::Blowfish::encrypt, bcrypt::bcrypt::bcrypt).
    _r("hashing", r"\b_?(hashlib|hmac|bcrypt|passlib|argon2|nacl)\b|pbkdf2|scrypt|argon2|bcrypt|blowfish"
                  r"|sha-?(1|224|256|384|512)|\bmd5|blake2|cryptography\.hazmat", re.IGNORECASE),
    # A Python sampler cannot see C frames: bcrypt's time shows on the Python function that
    # called it, which services name after what it does (sample_workload.auth.check_password).
    _r("hashing", r"\b(hash|check|verify)_?password", re.IGNORECASE),
    # Go encoders/decoders: encoding/json, xml, gob; protobuf, msgpack and the fast JSON libraries.
    _r("serialization", r"^encoding/(json|xml|gob|asn1|csv)\.|protobuf|msgpack|json-iterator|goccy/go-json"
                        r"|bytedance/sonic|mailru/easyjson"),
    # Python serializers: json (and its C accelerator _json), orjson, ujson, pickle, yaml, ...
    _r("serialization", r"\b_?(json|orjson|ujson|simplejson|rapidjson|pickle|cPickle|yaml|cbor2?)\b"),
    # marshal: import-time code loading and pstats dumps, real (de)serialization work.
    _r("serialization", r"\bmarshal\.(loads?|dumps?)\b"),
    # Starlette renders a JSONResponse by calling json.dumps in C-invisible code paths.
    _r("serialization", r"JSONResponse\.render"),
    # Go's regexp and Python's re (pattern objects, the compiler, the C engine _sre).
    _r("regex", r"^regexp(/syntax)?\.|(^|[\s'])(re|_sre|sre_compile|sre_parse|regex)\.\w"),
    # Go allocation and collection: the allocator, the mark workers and assists, the sweeper.
    _r("gc", r"^runtime\.(mallocgc\w*|newobject|newarray|makeslice\w*|makemap\w*|growslice|gcBgMarkWorker"
             r"|gcDrain\w*|gcAssistAlloc\w*|gcStart|gcMarkDone|gcMarkTermination|gcWriteBarrier\w*"
             r"|wbBufFlush\w*|scanobject|scanblock|scanstack|scanframeworker|markroot\w*|greyobject"
             r"|bgsweep|bgscavenge|sweepone|heapBitsSetType"
             r"|\(\*(mheap|mcache|mcentral|mspan|gcWork|pageAlloc|sweepLocked|sweepLocker"
             r"|gcControllerState|scavengerState)\)\.\w+)$"),
    # Python's cycle collector, when called explicitly or seen by a native profiler.
    _r("gc", r"\bgc\.(collect|_collect)\b"),
    # Go blocking: mutexes, wait groups, condition variables, channels and select, semaphores,
    # futexes, sleeps. runtime.lock/lock2 are left out on purpose: they guard the runtime's
    # own structures for nanoseconds, and charging them would make GC look like contention.
    _r("locks", r"^sync\.(\(\*(Mutex|RWMutex|WaitGroup|Cond)\)\.\w+|runtime_\w+)$"
                r"|^runtime\.(chanrecv\d?|chansend\d?|selectgo|semacquire\w*|semrelease\w*|futex\w*"
                r"|notetsleep\w*|notesleep|notewakeup|block)$|^internal/sync\.|^time\.Sleep$"),
    # Native waits seen by perf-style profilers.
    _r("locks", r"pthread_(cond_(timed)?wait|mutex_lock|rwlock_\w*lock)|__lll_lock_wait|\bfutex|\bsem_(timed)?wait"),
    # Python waits: threading's Condition/Event/Semaphore/join, the C lock, sleeps, asyncio's
    # locks and sleep, queue and future waits.
    _r("locks", r"^threading\.(\w+\.)?(wait\w*|acquire|join)$|'_thread\.(lock|RLock)'|\btime\.sleep\b"
                r"|^asyncio\.(tasks\.sleep|locks\.)|^(queue|asyncio\.queues)\.(\w+\.)?(get|put|join)$"
                r"|^concurrent\.futures\._base\.(\w+\.)?(result|wait|exception)$"),
    # TLS is network protocol work: the handshake and record framing and their waits. The
    # ciphers it calls (crypto/aes, crypto/ecdsa) sit below it and count as hashing.
    _r("network", r"^crypto/tls\."),
    # Python's ssl read/write: the socket wait and decryption happen inside one C call.
    _r("network", r"\bssl\.SSL(Socket|Object)\.(read|write|recv\w*|send\w*)$|'_ssl\._SSLSocket'"),
    # Go syscalls and the poller: the socket and file reads/writes and the netpoller.
    _r("network", r"^(syscall|golang\.org/x/sys/unix|runtime/internal/syscall|internal/runtime/syscall)\."
                  r"(Syscall\w*|RawSyscall\w*|read|write|Read|Write|pread|pwrite|accept4?|Accept4?|connect"
                  r"|Connect|sendto|Sendto|recvfrom|Recvfrom|sendmsg|recvmsg)$"
                  r"|^internal/poll\.|^runtime\.(netpoll\w*|epollwait|epollctl|kevent)$"
                  r"|^net\.\(\*(conn|netFD|TCPConn|UDPConn|UnixConn|IPConn|Resolver)\)\."),
    # Python sockets, select/epoll and raw file-descriptor I/O.
    _r("network", r"'_socket\.socket'|\bsocket\.(\w+\.)?(recv\w*|send\w*|accept|connect\w*|makefile)$"
                  r"|\bselect\.(select|poll|epoll|kqueue)\b|'select\.(epoll|poll|kqueue)'"
                  r"|\bselectors\.(\w+\.)?select$|\bposix\.(read|write|readv|writev|pread|pwrite)\b"
                  r"|^os\.(read|write)$"),
    # Database drivers and ORMs: their own CPU (protocol encoding, row decoding, pooling).
    _r("database", r"^database/sql\.|^github\.com/(lib/pq|jackc/(pgx|pgconn|pgproto3|pgtype|puddle)"
                   r"|go-sql-driver/mysql|mattn/go-sqlite3)|^modernc\.org/sqlite|^gorm\.io/"),
    _r("database", r"\b(psycopg\w*|sqlalchemy|asyncpg|_?sqlite3|pymysql|MySQLdb|aiomysql|aiosqlite|aiopg)\b"),
)

# Category names in registry order, then other: the keys of every answer.
CATEGORIES: tuple[str, ...] = (*dict.fromkeys(r.category for r in RULES), OTHER)

DESCRIPTIONS = {
    "hashing": "hashing and crypto (bcrypt, sha256, pbkdf2, hmac, scrypt, argon2, crypto/*)",
    "serialization": "serialization (JSON, protobuf, msgpack, pickle, marshal)",
    "regex": "regular expressions (re, regexp)",
    "gc": "garbage collection and allocation",
    "locks": "locks and waits (mutexes, channels, conditions, sleeps)",
    "network": "network and syscalls (sockets, poll/epoll, TLS, file-descriptor I/O)",
    "database": "database driver (psycopg, SQLAlchemy, asyncpg, database/sql, pgx, sqlite3)",
    OTHER: "everything else",
}

# pstats' std name of a Python function: FILE:LINE(FUNCTION).
_STD_NAME = re.compile(r"^(?P<file>.*):(?P<line>\d+)\((?P<func>[^()]*)\)$")
# Where a module path starts inside a file path: after site-packages or the stdlib folder.
_MODULE_ROOT = re.compile(r".*(?:/site-packages/|/dist-packages/|/lib/python\d+(?:\.\d+)?/)")


def _qualified(name: str) -> str:
    """A pstats std name as a module-qualified name; any other name unchanged."""
    m = _STD_NAME.match(name)
    if not m:
        return name
    path, func = m.group("file"), m.group("func")
    if path.startswith("<frozen ") and path.endswith(">"):
        module = path[len("<frozen "):-1]
    else:
        rest = _MODULE_ROOT.sub("", path.replace("\\", "/"))
        if rest == path.replace("\\", "/"):
            rest = rest.rsplit("/", 1)[-1]  # a project file: only its own module name
        module = rest.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
    return f"{module}.{func}" if module else func


@functools.lru_cache(maxsize=65536)
def categorize_frame(name: str) -> str | None:
    """The category of one frame name (pprof function or pstats std name), None if no rule matches."""
    qualified = _qualified(name)
    for rule in RULES:
        if rule.pattern.search(qualified):
            return rule.category
    return None


def _categorize_names(names: list[str]) -> pl.DataFrame:
    """(name, category) for the names some rule matches: the regexes run once per distinct
    name, never per sample."""
    pairs = [(n, c) for n in sorted(set(names)) if (c := categorize_frame(n)) is not None]
    return pl.DataFrame(pairs, schema={"name": pl.String, "category": pl.String}, orient="row")


def _empty_answer(total: float) -> dict[str, Any]:
    return {
        "categories": dict.fromkeys(CATEGORIES, 0.0),
        "values": dict.fromkeys(CATEGORIES, 0),
        "top_frames": {c: [] for c in CATEGORIES},
        "total": total,
    }


def _share(value: float, total: float) -> float:
    return value / total if total else 0.0


# Per stack (one row for all its samples): the category and node of its leaf-most
# categorised frame, and its leaf, from the stored node ids ($cats: node_id -> category,
# the few thousand nodes a rule matches). No frame name is built per sample.
_STACK_CATEGORIES_SQL = """
WITH per_stack AS (
    SELECT stack_id, sum(value[$idx])::BIGINT AS v FROM pprof_samples WHERE source_id = $sid GROUP BY stack_id
),
st AS (
    SELECT s.stack_id, s.node_ids, p.v
    FROM pprof_stacks s JOIN per_stack p USING (stack_id)
    WHERE s.source_id = $sid AND p.v <> 0
),
framed AS (
    SELECT stack_id, unnest(node_ids) AS node_id, generate_subscripts(node_ids, 1) AS pos FROM st
),
first AS (
    SELECT f.stack_id, arg_min(c.category, f.pos) AS category, arg_min(f.node_id, f.pos) AS node_id
    FROM framed f JOIN {cats} c USING (node_id) GROUP BY f.stack_id
),
rows AS (
    SELECT len(st.node_ids) > 0 AS has_frames, coalesce(first.category, 'other') AS category,
           coalesce(first.node_id, st.node_ids[1]) AS frame_id, st.node_ids[1] AS leaf_id, st.v
    FROM st LEFT JOIN first USING (stack_id)
),
names AS (SELECT node_id, name FROM pprof_nodes WHERE source_id = $sid),
attributed AS (
    SELECT r.category, n.name AS frame, sum(r.v)::BIGINT AS value
    FROM rows r JOIN names n ON n.node_id = r.frame_id WHERE r.has_frames GROUP BY ALL
),
flat AS (
    SELECT n.name AS frame, sum(r.v)::BIGINT AS flat
    FROM rows r JOIN names n ON n.node_id = r.leaf_id WHERE r.has_frames GROUP BY ALL
)
SELECT a.category, a.frame, a.value, coalesce(f.flat, 0)::BIGINT AS flat
FROM attributed a LEFT JOIN flat f USING (frame)
UNION ALL
SELECT NULL, NULL, coalesce(sum(v), 0)::BIGINT, 0 FROM rows WHERE NOT has_frames
"""


def _pprof_categories(store: Store, sid: int, sample_type: str | int | None) -> dict[str, Any]:
    idx, stype, unit = resolve_sample_type(store, sid, sample_type)
    total = source_total(store, sid, idx)
    out = _empty_answer(total)
    out.update(sample_type=stype, unit=unit, format="pprof")
    # Every frame is one of the source's nodes: the rules run once per distinct name.
    nodes = store.sql("SELECT node_id, name FROM pprof_nodes WHERE source_id = ?", [sid])
    cats = _categorize_names(nodes["name"].to_list())
    node_cats = nodes.join(cats, on="name", how="inner").select("node_id", "category")
    view = f"_perflab_node_cats_{next(_counter)}"
    # A temporary table, not con.register: DuckDB 2.0 keeps a registered table alive after
    # unregister, and a kernel asks for categories again and again.
    store.con.execute(f"CREATE TEMP TABLE {view} (node_id INTEGER, category VARCHAR)")
    try:
        store.con.from_arrow(node_cats.to_arrow()).insert_into(view)
        rows = store.sql(_STACK_CATEGORIES_SQL.format(cats=view).replace("$idx", str(idx + 1)).replace("$sid", "?"),
                         [sid] * _STACK_CATEGORIES_SQL.count("$sid"))
    finally:
        store.con.execute(f"DROP TABLE IF EXISTS {view}")
    per_frame = rows.filter(pl.col("category").is_not_null())
    unattributed = int(rows.filter(pl.col("category").is_null())["value"].sum())
    per_cat = per_frame.group_by("category").agg(pl.col("value").sum())
    values = dict(zip(per_cat["category"].to_list(), per_cat["value"].to_list(), strict=True))
    tops = (
        per_frame.sort(["category", "value", "frame"], descending=[False, True, False])
        .group_by("category", maintain_order=True).head(TOP_FRAMES_PER_CATEGORY)
    )
    for cat in CATEGORIES:
        v = int(values.get(cat, 0))
        out["values"][cat] = v
        out["categories"][cat] = _share(v, total)
    for r in tops.to_dicts():
        out["top_frames"][r["category"]].append({
            "name": r["frame"],
            "value": int(r["value"]),
            "share": _share(r["value"], total),
            "flat": int(r["flat"] or 0),
            "flat_share": _share(r["flat"] or 0, total),
        })
    out["unattributed"] = _share(unattributed, total)
    return out


def _cprofile_categories(store: Store, sid: int, sample_type: str | int | None) -> dict[str, Any]:
    if sample_type not in (None, "cpu", 0, "0"):
        raise PerflabError(f"source {sid} is a cProfile dump; its only sample type is cpu (seconds)")
    total, df = cprofile_top(store, sid)
    out = _empty_answer(float(total))
    out.update(sample_type="cpu", unit="seconds", format="cprofile", unattributed=0.0)
    if df.is_empty():
        return out
    cats = _categorize_names(df["name"].to_list())
    rows = (
        df.join(cats, on="name", how="left", maintain_order="left")
        .with_columns(pl.col("category").fill_null(OTHER))
    )
    per_cat = rows.group_by("category").agg(pl.col("flat").sum())
    values = dict(zip(per_cat["category"].to_list(), per_cat["flat"].to_list(), strict=True))
    for cat in CATEGORIES:
        v = float(values.get(cat, 0.0))
        out["values"][cat] = v
        out["categories"][cat] = _share(v, total)
    tops = (
        rows.sort(["category", "flat", "name"], descending=[False, True, False])
        .group_by("category", maintain_order=True).head(TOP_FRAMES_PER_CATEGORY)
    )
    for r in tops.to_dicts():
        out["top_frames"][r["category"]].append({
            "name": r["name"], "value": r["flat"], "share": _share(r["flat"], total),
            "flat": r["flat"], "flat_share": _share(r["flat"], total),
        })
    return out


def categories(store: Store, ref: str | int | os.PathLike[str],
               sample_type: str | int | None = None) -> dict[str, Any]:
    """The share of a profile's total in each hot-frame category.

    Returns ``{"source_id", "format", "sample_type", "unit", "total", "categories":
    {NAME: share}, "values": {NAME: value in the unit}, "top_frames": {NAME: [{"name",
    "value", "share", "flat", "flat_share"}]}, "unattributed": share}``. ``categories``
    holds every name of :data:`CATEGORIES`; shares are fractions of ``total`` and sum to
    1 − ``unattributed``. A top frame is the frame that took its samples into the
    category (the leaf-most matching one; for ``other``, the leaf), with the value it
    took (``share``) and its own pprof flat (``flat_share``); at most
    TOP_FRAMES_PER_CATEGORY per category, largest first.
    """
    sid = store.find_source(ref, kinds=PROFILE_KINDS)
    kind = str(store.source(sid)["kind"])
    # Every other profile kind (pprof, collapsed stacks, speedscope) is held in the pprof tables.
    out = (_cprofile_categories if kind == CPROFILE else _pprof_categories)(store, sid, sample_type)
    out["source_id"] = sid
    return out
