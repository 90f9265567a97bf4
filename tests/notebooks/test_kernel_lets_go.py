"""A notebook kernel left open holds no lock between cells: `perflab sources` reads and
`perflab ingest` writes the same store meanwhile, without waiting, and the next cell sees
what they wrote; a whole night (`perflab nightly`) runs beside it while readers come and go."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from jupyter_client.manager import start_new_kernel

from perflab.store import Store
from tests.conftest import FIXTURES
from tests.helpers import load_lab_run, run_cli

RUNS = FIXTURES / "runs"

TIMEOUT_S = 120


def _run(kc: object, code: str) -> str:
    out: list[str] = []

    def hook(msg: dict) -> None:
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            out.append("ERROR " + msg["content"]["ename"] + ": " + msg["content"]["evalue"])

    reply = kc.execute_interactive(code, timeout=TIMEOUT_S, output_hook=hook)  # type: ignore[attr-defined]
    text = "".join(out)
    assert reply["content"]["status"] == "ok", text
    return text


def test_cli_reads_and_writes_while_a_kernel_has_the_store(tmp_path: Path) -> None:
    path = tmp_path / "store.duckdb"
    km, kc = start_new_kernel(kernel_name="python3", env={**os.environ, "PERFLAB_LOCK_WAIT": "0"})
    try:
        _run(kc, f"from perflab.notebook import setup\nstore, src = setup({str(path)!r}, create_store=True)")
        before = int(_run(kc, "print(store.sql('SELECT count(*) AS n FROM sources')['n'][0])"))
        # WHILE the kernel idles with its store: a reader and a writer, neither allowed to wait
        no_wait = {**os.environ, "PERFLAB_LOCK_WAIT": "0"}
        read = run_cli("sources", "--json", store=path, env=no_wait)
        assert read.returncode == 0, read.stderr
        write = run_cli("ingest", str(FIXTURES / "k6" / "main_small.ndjson"), store=path, env=no_wait)
        assert write.returncode == 0, write.stderr
        # THEN the kernel's next cell opens the store again and sees the new source
        after = int(_run(kc, "print(store.sql('SELECT count(*) AS n FROM sources')['n'][0])"))
        assert after == before + 1
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_a_night_runs_while_a_kernel_has_the_store_and_readers_come_and_go(tmp_path: Path) -> None:
    # GIVEN a store holding a real retry storm and its fix, and a kernel that has opened it
    path = tmp_path / "store.duckdb"
    with Store(path) as store:
        runs = [load_lab_run(store, RUNS / name) for name in ("retry-storm-default", "retry-storm-fixed")]
    km, kc = start_new_kernel(kernel_name="python3", env=dict(os.environ))
    try:
        _run(kc, f"from perflab.notebook import setup\nstore, src = setup({str(path)!r})")
        count_runs = "print(len(store.sql('SELECT * FROM runs')))"
        before = int(_run(kc, count_runs))  # the lab runs, and the bundled samples setup() adds
        # WHEN a night is built from those runs while `sources` and `runs` are run again and
        # again beside it (each waits its turn for the store: the default wait)
        night = subprocess.Popen([sys.executable, "-m", "perflab", "--store", str(path), "nightly", "--runs", *runs,
                                  "--notebooks", "04-signatures", "--out", str(tmp_path / "reports")],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        readers: list[subprocess.CompletedProcess[str]] = []
        while night.poll() is None:
            readers.append(run_cli("sources", "--json", store=path))
            readers.append(run_cli("runs", "--json", store=path))
        _, night_err = night.communicate()
        # THEN the night and every reader succeeded, and the readers saw both runs
        assert night.returncode == 0, night_err[-3000:]
        assert len(readers) >= 4  # they did run while the night did
        for r in readers:
            assert r.returncode == 0, r.stderr
        listed = [json.loads(r.stdout) for r in readers if r.args[-2:] == ["runs", "--json"]]
        assert all(len(rows) == before and set(runs) <= {row["run_id"] for row in rows} for rows in listed)
        # AND the kernel's next cell reads the store the night wrote to
        assert int(_run(kc, count_runs)) == before
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
