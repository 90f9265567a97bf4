"""Hot-frame categories: the leaf-first attribution rule on real Go profiles (checked
against `go tool pprof`'s own per-function numbers) and on cProfile dumps of real
hashing and JSON work made at test time (checked against pstats)."""

from __future__ import annotations

import cProfile
import gzip
import hashlib
import json
import pstats
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from perflab.analysis.categories import CATEGORIES, OTHER, RULES, categories, categorize_frame
from perflab.analysis.profiles import stacks
from perflab.errors import PerflabError
from perflab.store import Store
from tests.helpers import run_cli
from tests.helpers import via_files

# The analyses read the store only; these tests hand them fixture files, ingested first.
categories = via_files(categories)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
GENERATED = FIXTURES / "pprof" / "generated"
LOGINSTORM_CPU = GENERATED / "small_loginstorm.cpu.pb.gz"
BLOCK = GENERATED / "small_falseidle.block.pb.gz"
MUTEX = GENERATED / "small_falseidle.mutex.pb.gz"
HEAP = GENERATED / "small_loginstorm.heap.pb.gz"


def expected(profile: Path) -> dict[str, Any]:
    return json.loads((profile.parent / f"{profile.name}.oracle" / "expected.json").read_text())


def by_flat(exp: dict[str, Any], key: str) -> dict[str | None, int]:
    """Σ pprof flat per category of the function (None: no rule matches)."""
    out: dict[str | None, int] = {}
    for f in exp["functions"][key]:
        cat = categorize_frame(f["name"])
        out[cat] = out.get(cat, 0) + f["flat"]
    return out


def leaf_first_oracle(store: Store, sid: int, sample_type: str | None) -> dict[str, int]:
    """The attribution rule written the plain way: one Python loop over every stack."""
    out = dict.fromkeys(CATEGORIES, 0)
    for frames, value in stacks(store, sid, sample_type).iter_rows():
        if not frames:
            continue
        cat = next((c for c in map(categorize_frame, frames) if c is not None), OTHER)
        out[cat] += value
    return out


# -- the decision table of categorize_frame ------------------------------------------------

@pytest.mark.parametrize("name, category", [
    # Go, as pprof names functions
    ("crypto/sha256.block", "hashing"),
    ("crypto/hmac.(*hmac).Sum", "hashing"),
    ("golang.org/x/crypto/bcrypt.bcrypt", "hashing"),
    ("main.pbkdf2SHA256", "hashing"),
    ("encoding/json.(*encodeState).marshal", "serialization"),
    ("google.golang.org/protobuf/proto.Marshal", "serialization"),
    ("regexp.(*Regexp).FindStringSubmatch", "regex"),
    ("runtime.mallocgc", "gc"),
    ("runtime.gcBgMarkWorker", "gc"),
    ("runtime.scanobject", "gc"),
    ("runtime.(*mcentral).cacheSpan", "gc"),
    ("sync.(*Mutex).Lock", "locks"),
    ("sync.(*WaitGroup).Wait", "locks"),
    ("runtime.chanrecv2", "locks"),
    ("runtime.selectgo", "locks"),
    ("sync.runtime_SemacquireMutex", "locks"),
    ("runtime.futex", "locks"),
    ("time.Sleep", "locks"),
    ("syscall.Syscall", "network"),
    ("internal/poll.(*FD).Read", "network"),
    ("runtime.netpoll", "network"),
    ("crypto/tls.(*Conn).Read", "network"),
    ("database/sql.(*DB).QueryContext", "database"),
    ("github.com/lib/pq.(*conn).query", "database"),
    ("github.com/jackc/pgx/v5.(*Conn).Query", "database"),
    # Python, as a sampling profiler names functions
    ("sample_workload.auth.check_password", "hashing"),
    ("json.encoder.JSONEncoder.encode", "serialization"),
    ("starlette.responses.JSONResponse.render", "serialization"),
    ("psycopg.types.json.Jsonb.dumps", "serialization"),
    ("re.compile", "regex"),
    ("threading.Condition.wait", "locks"),
    ("asyncio.tasks.sleep", "locks"),
    ("selectors.EpollSelector.select", "network"),
    ("sqlalchemy.engine.base.Connection.execute", "database"),
    ("asyncpg.protocol.protocol.BaseProtocol.bind_execute", "database"),
    # Python, as pstats names functions
    ("{built-in method bcrypt._bcrypt.checkpw}", "hashing"),
    ("{built-in method _hashlib.pbkdf2_hmac}", "hashing"),
    ("/usr/lib/python3.11/hmac.py:38(__init__)", "hashing"),
    ("/usr/lib/python3.11/json/encoder.py:205(iterencode)", "serialization"),
    ("{built-in method _pickle.dumps}", "serialization"),
    ("{built-in method marshal.loads}", "serialization"),
    ("{method 'match' of 're.Pattern' objects}", "regex"),
    ("/usr/lib/python3.11/re/_parser.py:979(parse)", "regex"),
    ("{built-in method gc.collect}", "gc"),
    ("{method 'acquire' of '_thread.lock' objects}", "locks"),
    ("{built-in method time.sleep}", "locks"),
    ("/usr/lib/python3.11/threading.py:295(wait)", "locks"),
    ("{method 'recv_into' of '_socket.socket' objects}", "network"),
    ("{method 'poll' of 'select.epoll' objects}", "network"),
    ("{method 'read' of '_ssl._SSLSocket' objects}", "network"),
    ("/venv/lib/python3.11/site-packages/psycopg/cursor.py:700(execute)", "database"),
    ("{method 'execute' of 'sqlite3.Cursor' objects}", "database"),
    # entry points and look-alikes match nothing: under the leaf-first rule they would
    # swallow every uncategorised frame below them
    ("net/http.(*conn).serve", None),
    ("sync.(*Once).Do", None),
    ("runtime.lock2", None),
    ("runtime.gopark", None),
    ("sample_workload.state.read_json", None),
    ("/home/bob/json-tools/app.py:12(main)", None),
    ("asyncio.base_events.BaseEventLoop._run_once", None),
    ("main.(*authServer).handleLogin", None),
])
def test_categorize_frame(name: str, category: str | None) -> None:
    assert categorize_frame(name) == category


def test_registry_lists_every_category_once_with_other_last() -> None:
    assert CATEGORIES == ("hashing", "serialization", "regex", "gc", "locks", "network", "database", "other")
    assert {r.category for r in RULES} == set(CATEGORIES) - {OTHER}


# -- Go profiles against go tool pprof's numbers ----------------------------------------------

def test_loginstorm_cpu_is_hashing_bound(store: Store) -> None:
    exp = expected(LOGINSTORM_CPU)
    total = exp["totals"]["cpu"]
    flat = by_flat(exp, "cpu")

    result = categories(store, LOGINSTORM_CPU)

    assert result["sample_type"] == "cpu" and result["unit"] == "nanoseconds"
    assert result["total"] == total
    shares = result["categories"]
    assert max(shares, key=shares.get) == "hashing"
    # Every sample whose leaf is a hashing function counts as hashing; so do the samples
    # of uncategorised leaves under one (runtime.memmove inside sha256), so hashing is more.
    assert result["values"]["hashing"] >= flat["hashing"]
    assert result["values"]["hashing"] > flat["hashing"]
    for cat in CATEGORIES[:-1]:
        assert result["values"][cat] >= flat.get(cat, 0), cat
    # No frameless samples: the categories hold pprof's whole total.
    assert sum(result["values"].values()) == sum(f["flat"] for f in exp["functions"]["cpu"]) == total
    assert result["unattributed"] == 0.0
    assert 0.999 <= sum(shares.values()) <= 1.0 + 1e-12
    # crypto/sha256.block is only ever a leaf (flat == cum), so the value it takes into
    # hashing is exactly its pprof flat.
    block = next(f for f in exp["functions"]["cpu"] if f["name"] == "crypto/sha256.block")
    assert block["flat"] == block["cum"]
    top = result["top_frames"]["hashing"][0]
    assert top["name"] == "crypto/sha256.block"
    assert top["value"] == top["flat"] == block["flat"]
    assert top["share"] == top["flat_share"] == block["flat"] / total
    # The attribution equals a plain per-stack loop of the same rule, category by category.
    assert result["values"] == leaf_first_oracle(store, result["source_id"], "cpu")
    assert shares == {c: v / total for c, v in result["values"].items()}


@pytest.mark.parametrize("profile", [BLOCK, MUTEX], ids=["block", "mutex"])
@pytest.mark.parametrize("key", ["contentions", "delay"])
def test_block_and_mutex_profiles_are_all_waits(store: Store, profile: Path, key: str) -> None:
    exp = expected(profile)
    leaves = [f for f in exp["functions"][key] if f["flat"]]
    assert leaves and all(categorize_frame(f["name"]) == "locks" for f in leaves)

    result = categories(store, profile, sample_type=key)

    assert result["total"] == exp["totals"][key]
    assert result["values"]["locks"] == sum(f["flat"] for f in leaves) == exp["totals"][key]
    assert result["categories"]["locks"] == 1.0
    assert sum(result["categories"].values()) == 1.0
    # The top wait is pprof's largest flat, with pprof's own number.
    biggest = max(leaves, key=lambda f: (f["flat"], f["name"]))
    assert result["top_frames"]["locks"][0]["name"] == biggest["name"]
    assert result["top_frames"]["locks"][0]["flat"] == biggest["flat"]


def test_every_sample_type_of_a_heap_profile(store: Store) -> None:
    exp = expected(HEAP)
    for key in exp["sample_type_keys"]:
        result = categories(store, HEAP, sample_type=key)
        flat = by_flat(exp, key)
        assert result["sample_type"] == key
        assert sum(result["values"].values()) == exp["totals"][key]
        for cat in CATEGORIES[:-1]:
            assert result["values"][cat] >= flat.get(cat, 0), (key, cat)
        assert result["values"] == leaf_first_oracle(store, result["source_id"], key)
    # crypto/sha256.New and crypto/hmac.New allocate on every login
    assert categories(store, HEAP, sample_type="alloc_space")["values"]["hashing"] >= \
        by_flat(exp, "alloc_space")["hashing"] > 0


def _write_profile(path: Path, stacks_leaf_first: list[tuple[list[str], int]]) -> None:
    from perflab.ingest.pprof_proto import Profile

    prof = Profile()
    strings = [""]

    def s(text: str) -> int:
        if text not in strings:
            strings.append(text)
        return strings.index(text)

    prof.sample_type.add(type=s("cpu"), unit=s("nanoseconds"))
    names: dict[str, int] = {}
    for frames, value in stacks_leaf_first:
        ids = []
        for name in frames:
            if name not in names:
                names[name] = len(names) + 1
                prof.function.add(id=names[name], name=s(name), system_name=s(name))
                loc = prof.location.add(id=names[name])
                loc.line.add(function_id=names[name], line=1)
            ids.append(names[name])
        prof.sample.add(location_id=ids, value=[value])
    prof.string_table.extend(strings)
    path.write_bytes(gzip.compress(prof.SerializeToString()))


def test_the_leaf_most_matching_frame_decides(store: Store, tmp_path: Path) -> None:
    # GIVEN stacks where two categories meet, and samples without frames
    path = tmp_path / "mixed.pb.gz"
    _write_profile(path, [
        (["json.encoder.JSONEncoder.encode", "psycopg.cursor.Cursor.execute", "app.handler"], 100),
        (["{method 'recv_into' of '_socket.socket' objects}", "psycopg.cursor.Cursor.execute"], 30),
        (["app.copy_bytes", "bcrypt._bcrypt.checkpw", "app.login"], 50),
        (["app.parse", "app.handler"], 15),
        (["sqlalchemy.engine.base.Connection.execute", "app.handler"], 5),
        ([], 20),
    ])
    # WHEN categorised
    result = categories(store, path)
    # THEN the JSON encoder inside the driver is serialization, the socket read network,
    # the copy under bcrypt hashing, and what matches nothing is named by its leaf
    assert result["total"] == 220
    assert result["values"] == {"hashing": 50, "serialization": 100, "regex": 0, "gc": 0, "locks": 0,
                                "network": 30, "database": 5, "other": 15}
    assert result["unattributed"] == 20 / 220
    assert sum(result["categories"].values()) == pytest.approx(200 / 220)
    assert result["top_frames"]["hashing"] == [
        {"name": "bcrypt._bcrypt.checkpw", "value": 50, "share": 50 / 220, "flat": 0, "flat_share": 0.0}]
    assert result["top_frames"]["other"][0]["name"] == "app.parse"


# -- Python profiles made now --------------------------------------------------------------------

def _profile(tmp_path: Path, name: str, fn: Any) -> Path:
    prof = cProfile.Profile()
    prof.runcall(fn)
    out = tmp_path / f"{name}.prof"
    prof.dump_stats(out)
    return out


def _pstats_share(path: Path, category: str) -> float:
    """Σ tottime of the functions of ``category`` over pstats' total, straight from pstats."""
    st = pstats.Stats(str(path))
    own = sum(v[2] for k, v in st.stats.items() if categorize_frame(pstats.func_std_string(k)) == category)
    return own / st.total_tt


def handle_login_bcrypt() -> None:
    stored = bcrypt.hashpw(b"correct horse", bcrypt.gensalt(8))
    for attempt in range(6):
        request = json.loads(json.dumps({"user": f"u{attempt}", "password": "correct horse"}))
        bcrypt.checkpw(request["password"].encode(), stored)


def handle_login_pbkdf2() -> None:
    for attempt in range(8):
        hashlib.pbkdf2_hmac("sha256", b"secret", f"salt{attempt}".encode(), 30_000)


def render_reports() -> None:
    rows = [{"id": i, "name": f"row {i}", "tags": ["a", "b", "c"], "score": i / 7} for i in range(2000)]
    for _ in range(15):
        json.loads(json.dumps(rows))


@pytest.mark.parametrize("workload", [handle_login_bcrypt, handle_login_pbkdf2], ids=["bcrypt", "pbkdf2"])
def test_cprofile_of_password_hashing_is_hashing(store: Store, tmp_path: Path, workload: Any) -> None:
    path = _profile(tmp_path, workload.__name__, workload)

    result = categories(store, path)

    assert result["format"] == "cprofile" and result["unit"] == "seconds"
    assert result["categories"]["hashing"] >= 0.7
    assert result["categories"]["hashing"] == pytest.approx(_pstats_share(path, "hashing"), rel=1e-12)
    assert result["total"] == pstats.Stats(str(path)).total_tt
    assert sum(result["categories"].values()) == pytest.approx(1.0, abs=1e-9)
    assert "bcrypt" in result["top_frames"]["hashing"][0]["name"] or \
        "pbkdf2_hmac" in result["top_frames"]["hashing"][0]["name"]


def test_cprofile_of_json_rendering_is_serialization(store: Store, tmp_path: Path) -> None:
    path = _profile(tmp_path, "render", render_reports)

    result = categories(store, path)

    shares = result["categories"]
    assert max(shares, key=shares.get) == "serialization"
    assert shares["serialization"] == pytest.approx(_pstats_share(path, "serialization"), rel=1e-12)
    assert shares["serialization"] > 0.5


@pytest.mark.parametrize("fixture, category", [("hashing.prof", "hashing"), ("json.prof", "serialization"),
                                               ("cli_script.prof", "serialization")])
def test_cprofile_fixtures(store: Store, fixture: str, category: str) -> None:
    path = FIXTURES / "cprofile" / fixture
    result = categories(store, path)
    shares = result["categories"]
    assert max(shares, key=shares.get) == category
    for cat in CATEGORIES[:-1]:
        assert shares[cat] == pytest.approx(_pstats_share(path, cat), rel=1e-12, abs=1e-15), cat


def test_cprofile_has_only_the_cpu_sample_type(store: Store) -> None:
    with pytest.raises(PerflabError, match="only sample type is cpu"):
        categories(store, FIXTURES / "cprofile" / "json.prof", sample_type="alloc_space")


# -- the CLI --------------------------------------------------------------------------------------

def test_cli_json_and_table(store_path: Path) -> None:
    res = run_cli("categories", str(LOGINSTORM_CPU), "--json", store=store_path)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["sample_type"] == "cpu"
    assert set(out["categories"]) == set(CATEGORIES)
    assert out["top_frames"]["hashing"][0]["name"] == "crypto/sha256.block"
    again = run_cli("categories", str(LOGINSTORM_CPU), "--json", store=store_path)
    assert again.stdout == res.stdout  # deterministic, sorted keys

    table = run_cli("categories", str(out["source_id"]), "--sample-type", "samples", store=store_path)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0] == "Type: samples (count), total 215"
    assert lines[2].split()[:2] == ["hashing", f"{100 * 203 / 215:.2f}%"]

    bad = run_cli("categories", str(out["source_id"]), "--sample-type", "nope", store=store_path)
    assert bad.returncode == 2
    assert "no sample type 'nope'" in bad.stderr and "Traceback" not in bad.stderr
