"""A notebook kernel left open holds no lock between cells: `perflab sources` reads and
`perflab ingest` writes the same store meanwhile, without waiting, and the next cell sees
what they wrote."""

from __future__ import annotations

import os
from pathlib import Path

from jupyter_client.manager import start_new_kernel

from tests.conftest import FIXTURES
from tests.helpers import run_cli

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
