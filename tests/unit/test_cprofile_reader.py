"""The bounded marshal reader: equal to marshal.loads on every pstats dict, and safe on
bytes that would make marshal.loads allocate gigabytes."""

from __future__ import annotations

import marshal
import pstats
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perflab.ingest.cprofile import PstatsError, _std_name, load_pstats, read_marshal, to_arrow, validate
from tests.conftest import FIXTURES

DIR = FIXTURES / "cprofile"

ints = st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1)
times = st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(1 << 40), 1 << 40)
# Every code point, lone surrogates included: marshal writes them with surrogatepass.
# Real names are UTF-8 text; lone surrogates (which marshal can carry) are refused, see below.
names = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
keys = st.tuples(names | st.sampled_from(["~", "a.py"]), ints, names)


@st.composite
def stats_dicts(draw):
    """pstats-shaped dicts whose callers reuse the key objects, as cProfile's do (refs)."""
    key_list = draw(st.lists(keys, min_size=1, max_size=8, unique=True))
    stats = {}
    for key in key_list:
        callers = {}
        for caller in draw(st.lists(st.sampled_from(key_list), max_size=4, unique=True)):
            callers[caller] = draw(ints | st.tuples(ints, ints, times, times))
        stats[key] = (draw(ints), draw(ints), draw(times), draw(times), callers)
    return stats


@settings(max_examples=300, deadline=None)
@given(stats=stats_dicts(), version=st.integers(0, marshal.version))
def test_reader_equals_marshal_on_generated_dicts(stats, version):
    data = marshal.dumps(stats, version)
    got = load_pstats(data)
    assert got == marshal.loads(data) == stats
    assert list(got) == list(stats)  # the key order too: totals are summed in it


@pytest.mark.parametrize("name", ["cli_script.prof", "merged_stripped.prof", "profile_module.prof"])
def test_reader_equals_pstats_on_fixtures(name):
    path = DIR / name
    assert load_pstats(path.read_bytes()) == pstats.Stats(str(path)).stats


def test_every_truncation_is_refused_cleanly():
    data = (DIR / "recursive.prof").read_bytes()
    for n in range(len(data)):
        with pytest.raises(PstatsError):
            load_pstats(data[:n])


def test_every_single_byte_change_is_refused_or_read_as_marshal_would():
    # Each byte of a real dump replaced by a few values: the reader either refuses with
    # PstatsError (never another exception) or returns what marshal.loads returns.
    data = (DIR / "hashing.prof").read_bytes()
    read = 0
    for i in range(len(data)):
        for value in (0x00, 0x29, 0x7F, 0xFF, data[i] ^ 0x01):
            mutated = data[:i] + bytes([value]) + data[i + 1 :]
            try:
                got = load_pstats(mutated)
            except PstatsError:
                continue
            read += 1
            # Safe to compare: the reader accepted it, so no size in it is out of bounds.
            assert got == marshal.loads(mutated)
    assert read > 0  # float and string bytes change values, not structure


@pytest.mark.parametrize("data, phrase", [
    (b"{)\x03z\x01a(\xff\xff\xff\x7f", "a tuple of 2147483647 items"),
    (b"{(\xff\xff\xff\x7f", "a tuple of 2147483647 items"),
    (b"{)\x03z\x01al\xff\xff\xff\x7f", "an integer of 2147483647 15-bit digits"),
    (b"{)\x03u\xff\xff\xff\x7f", "truncated (needs 2147483647 more bytes"),
    (b"{)\x03u\xff\xff\xff\xff", "a negative length -1"),
    (b"{" * 100_000, "containers nested deeper than a pstats dict"),
    (b"{)\x03[\x00\x00\x00\x00", "a marshal list, which a pstats file never holds"),
    (b"{)\x03c", "a marshal code object, which a pstats file never holds"),
    (b"{)\x03r\x00\x00\x00\x00", "reference 0 to an object not read yet"),
    (b"\xfb)\x03r\x00\x00\x00\x00", "reference to a container from inside itself"),
])
def test_hostile_headers_are_refused_at_once(data, phrase):
    start = time.perf_counter()
    with pytest.raises(PstatsError, match=phrase.replace("(", r"\(")):
        read_marshal(data)
    assert time.perf_counter() - start < 0.5  # marshal.loads spends ~50 s on the first


@pytest.mark.parametrize("stats, phrase", [
    ([1, 2], "holds a list, not a pstats dict"),
    ({}, "an empty profile"),
    ({("a.py", True, "f"): (1, 1, 0.0, 0.0, {})}, "function key ('a.py', True, 'f') is not (file, line, name)"),
    ({("a.py", 1 << 70, "f"): (1, 1, 0.0, 0.0, {})}, "is not (file, line, name)"),
    ({("a.py", 1, "f"): (1, 1, 0.0, float("inf"), {})}, "a.py:1(f): value (1, 1, 0.0, inf, {}) is not"),
    ({("a.py", 1, "f"): (1, 1, 0.0, 0.0, {("b.py", 2, "g"): (1, 1, float("-inf"), 0.0)})},
     "a.py:1(f): caller b.py:2(g) has (1, 1, -inf, 0.0), not (calls, primitive calls, tottime, cumtime) "
     "(a time of -inf is no time)"),
    ({("a.py", 1, "f"): (1, 1, 0.0, 0.0, {"x": 1})}, "a.py:1(f): caller key 'x' is not"),
    ({("a.py", 1, "f"): (1, 1, 0.0, 0.0, {("~", 0, "<g>"): (1, 1, "t", 0.0)})},
     "a.py:1(f): caller {g} has (1, 1, 't', 0.0), not (calls"),
])
def test_wrong_structure_is_named(stats, phrase):
    with pytest.raises(PstatsError) as err:
        validate(stats)
    assert phrase in str(err.value)


def test_marshal_types_outside_pstats_are_named():
    with pytest.raises(PstatsError, match="a marshal True, which a pstats file never holds"):
        load_pstats(marshal.dumps({("a.py", True, "f"): (1, 1, 0.0, 0.0, {})}))


@settings(max_examples=300, deadline=None)
@given(key=keys | st.tuples(st.just("~"), st.integers(-2, 2), st.sampled_from(["<x>", "<x", "x>", "", "<>"])))
def test_std_name_is_pstats_func_std_string(key):
    assert _std_name(key) == pstats.func_std_string(key)


@settings(max_examples=100, deadline=None)
@given(stats=stats_dicts())
def test_arrow_columns_hold_the_dict(stats):
    functions, edges, meta = to_arrow(stats)
    rows = functions.to_pylist()
    assert [(r["file"], r["line"], r["name"]) for r in rows] == list(stats)  # file order kept
    assert [r["std_name"] for r in rows] == [pstats.func_std_string(k) for k in stats]
    assert [(r["primitive_calls"], r["calls"], r["tottime"], r["cumtime"]) for r in rows] == [
        v[:4] for v in stats.values()]
    keys_by_id = list(stats)
    got = {}
    for e in edges.to_pylist():
        edge = e["calls"] if e["primitive_calls"] is None else (
            e["calls"], e["primitive_calls"], e["tottime"], e["cumtime"])
        got[(keys_by_id[e["caller_id"]], keys_by_id[e["callee_id"]])] = edge
    assert got == {(c, k): edge for k, v in stats.items() for c, edge in v[4].items()}
    assert meta["functions"] == len(stats) and meta["edges"] == len(got)


def test_a_lone_surrogate_in_a_name_is_refused_not_mangled():
    import marshal

    data = marshal.dumps({("a.py", 1, "\ud800"): (1, 1, 0.0, 0.0, {})})
    with pytest.raises(PstatsError, match="not valid UTF-8 text"):
        load_pstats(data)
