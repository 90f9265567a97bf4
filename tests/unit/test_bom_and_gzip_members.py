"""Unusual but valid input: a UTF-8 BOM in any text format, gzip with an empty or several
members. Each is read exactly as the plain file is."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pytest

from perflab.ingest import detect, ingest_path
from perflab.store import Store
from tests.conftest import FIXTURES

BOM = b"\xef\xbb\xbf"

# One file of every text format perflab reads (gzipped ones are read inflated).
TEXT_FILES = [
    "k6/main_small.ndjson", "k6/main_small.csv", "k6/main_small.summary.json", "k6/summary_small.handle.json",
    "pg/pg_stat_database_after.jsonl", "pg/pg_stat_database_after.csv", "pg/pg_stat_activity_samples.jsonl",
    "metrics/debug_vars.json", "stacks/speedscope__stackcollapse_simple.txt",
    "stacks/speedscope__speedscope_0.6.0_two-sampled.speedscope.json",
    "runs/retry-storm-fixed/metrics.prom.gz", "runs/retry-storm-fixed/resources.jsonl.gz",
]


def _content(rel: str) -> bytes:
    raw = (FIXTURES / rel).read_bytes()
    return gzip.decompress(raw) if rel.endswith(".gz") else raw


def _name(rel: str) -> str:
    return Path(rel).name.removesuffix(".gz")


def _ingest(path: Path) -> tuple[str, dict[str, Any]]:
    with Store(path.parent / f"{path.name}.duckdb") as store:
        r = ingest_path(store, path)
        return r.kind, r.stats


@pytest.mark.parametrize("rel", TEXT_FILES)
def test_a_bom_is_read_past_in_every_text_format(tmp_path: Path, rel: str) -> None:
    plain, with_bom, gz_bom = tmp_path / "plain", tmp_path / "bom", tmp_path / "gz"
    for d in (plain, with_bom, gz_bom):
        d.mkdir()
    content = _content(rel)
    assert not content.startswith(BOM)
    (plain / _name(rel)).write_bytes(content)
    (with_bom / _name(rel)).write_bytes(BOM + content)
    (gz_bom / (_name(rel) + ".gz")).write_bytes(gzip.compress(BOM + content))
    expected = _ingest(plain / _name(rel))
    # THEN the same kind and the same counts, whether the BOM is in a plain or a gzipped file
    assert _ingest(with_bom / _name(rel)) == expected
    assert _ingest(gz_bom / (_name(rel) + ".gz")) == expected
    assert detect(with_bom / _name(rel))[0] == expected[0]


def test_a_bom_file_is_stored_as_itself_and_its_errors_name_it(tmp_path: Path) -> None:
    bad = tmp_path / "k6.ndjson"
    bad.write_bytes(BOM + _content("k6/main_small.ndjson").replace(b"\n", b"\n{oops\n", 1))
    store = Store(tmp_path / "s.duckdb")
    with pytest.raises(Exception, match=r"k6\.ndjson: line 2: ") as err:
        ingest_path(store, bad)
    assert ".nobom" not in str(err.value)
    good = tmp_path / "main_small.ndjson"
    good.write_bytes(BOM + _content("k6/main_small.ndjson"))
    r = ingest_path(store, good)
    row = store.con.execute("SELECT path, bytes FROM sources WHERE source_id = ?", [r.source_id]).fetchall()
    assert row == [(str(good.resolve()), good.stat().st_size)]
    store.close()


def test_gzip_with_an_empty_first_member_or_several_members(tmp_path: Path) -> None:
    content = _content("k6/main_small.ndjson")
    expected = _ingest(_write(tmp_path / "plain", "k6.ndjson", content))
    # `: | gzip > f.gz; gzip < data >> f.gz`: an empty member, then the data
    empty_first = gzip.compress(b"") + gzip.compress(content)
    # split in three members at arbitrary points (what `cat a.gz b.gz c.gz` makes)
    thirds = len(content) // 3
    several = b"".join(gzip.compress(part) for part in (content[:thirds], content[thirds:2 * thirds],
                                                        content[2 * thirds:]))
    for name, data in (("empty-first", empty_first), ("several", several)):
        path = _write(tmp_path / name, "k6.ndjson.gz", data)
        assert detect(path) == ("k6", True)
        assert _ingest(path) == expected, name


def _write(folder: Path, name: str, data: bytes) -> Path:
    folder.mkdir()
    (folder / name).write_bytes(data)
    return folder / name
