"""`make lab` end to end: JupyterLab starts on 127.0.0.1 with the notebooks and a store that
holds the samples, a notebook runs through the server's own kernel and prints the numbers
committed in it, JupyterLab itself (in headless Chromium) draws every figure that kernel
showed, the explorer's panes follow a control changed in that kernel and, in JupyterLab in
headless Chromium, a focus typed into the explorer and a click on its flame graph, and
stopping the server by PID leaves no process and no open port."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest
from jupyter_client import BlockingKernelClient

from perflab.lab.postgres import free_port, port_listens
from tests.cdp import page_of
from tests.helpers import run_cli
from tests.integration.test_nightly import CHROMIUM_FLAGS, chromium, drawn_figures

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 90.0
CELL_TIMEOUT_S = 120.0
NOTEBOOK = "02-profiles.ipynb"
PLOTLY_MIMETYPE = "application/vnd.plotly.v1+json"
# JupyterLab is a large application: the page may take this much (virtual) time to draw.
LAB_PAGE_BUDGET_MS = 30000
# Only the server on loopback answers: no name resolves, anything else goes to a proxy that
# is not there (Chromium bypasses the proxy for loopback by default).
LOOPBACK_ONLY = ["--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1", "--proxy-server=http://127.0.0.1:9"]


def _get(url: str, token: str, method: str = "GET", body: dict[str, Any] | None = None) -> Any:
    req = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body else None,
                                 headers={"Authorization": f"token {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback
        return json.loads(resp.read() or b"null")


def _wait_for_api(base: str, token: str, make: subprocess.Popen[bytes], log: Path) -> dict[str, Any]:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert make.poll() is None, log.read_text(errors="replace")[-3000:]
        try:
            return _get(f"{base}/api", token)
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"JupyterLab did not answer {base}/api: {log.read_text(errors='replace')[-3000:]}")


def _server_process(make: subprocess.Popen[bytes]) -> psutil.Process:
    # `make lab` execs the server in its recipe's shell: make's child is JupyterLab itself.
    for _ in range(100):
        kids = psutil.Process(make.pid).children()
        if kids and "jupyter" in " ".join(kids[0].cmdline()):
            return kids[0]
        time.sleep(0.1)
    raise AssertionError("no JupyterLab process under make")


def _run_cells(kc: BlockingKernelClient, cells: list[dict[str, Any]]) -> dict[str, str]:
    """Execute code cells in order on the kernel; return each cell's stdout by cell id, and
    keep what the kernel displayed in each cell's outputs (as JupyterLab would store it)."""
    out: dict[str, str] = {}
    for cell in cells:
        printed: list[str] = []
        shown: list[dict[str, Any]] = []

        def hook(msg: dict[str, Any], sink: list[str] = printed, outputs: list[dict[str, Any]] = shown) -> None:
            if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
                sink.append(msg["content"]["text"])
            if msg["msg_type"] == "error":
                sink.append("ERROR " + msg["content"]["ename"] + ": " + msg["content"]["evalue"])
            if msg["msg_type"] == "display_data":
                outputs.append({"output_type": "display_data", "data": msg["content"]["data"],
                                "metadata": msg["content"]["metadata"]})

        reply = kc.execute_interactive("".join(cell["source"]), timeout=CELL_TIMEOUT_S, output_hook=hook)
        assert reply["content"]["status"] == "ok", (cell["id"], "".join(printed))
        out[cell["id"]] = "".join(printed)
        cell["outputs"] = shown
    return out


def _explorer_updates(kc: BlockingKernelClient, code: str) -> list[tuple[str, dict[str, Any]]]:
    """Run ``code``; the display messages it caused: (message type, data)."""
    seen: list[tuple[str, dict[str, Any]]] = []

    def hook(msg: dict[str, Any]) -> None:
        if msg["msg_type"] in ("display_data", "update_display_data"):
            seen.append((msg["msg_type"], msg["content"]["data"]))

    reply = kc.execute_interactive(code, timeout=CELL_TIMEOUT_S, output_hook=hook)
    assert reply["content"]["status"] == "ok", reply["content"]
    return seen


def _printed(kc: BlockingKernelClient, code: str) -> str:
    out: list[str] = []

    def hook(msg: dict[str, Any]) -> None:
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])

    kc.execute_interactive(code, timeout=CELL_TIMEOUT_S, output_hook=hook)
    return "".join(out)


_FOCUS_INPUT = ("Array.from(document.querySelectorAll('.widget-text input'))"
                ".find(e => e.placeholder.startsWith('regexp, e.g. sha256'))")
_KERNEL_IDLE = ("(async () => { const w = jupyterapp.shell.currentWidget; if (!w || !w.sessionContext) return false;"
                " await w.sessionContext.ready; const k = w.sessionContext.session && w.sessionContext.session.kernel;"
                " return !!k && k.status === 'idle'; })()")
# The explorer's flame graph (the page's last icicle titled "Flame graph"): a narrow box, and
# the point to click.
_A_BOX = """(() => {
  const plots = Array.from(document.querySelectorAll('.js-plotly-plot')).filter(g => g.data && g.data.length === 1
    && g.data[0].type === 'icicle' && String(g.layout.title.text || '').startsWith('Flame graph'));
  const g = plots[plots.length - 1]; window.__perflabFlame = g;
  const width = g.getBoundingClientRect().width;
  let best = null;
  for (const s of g.querySelectorAll('g.slice')) {
    const r = s.getBoundingClientRect();
    if (r.width > 40 && r.height > 10 && r.width < 0.9 * width && (!best || r.width < best.r.width)) best = {s, r};
  }
  best.s.scrollIntoView({block: 'center'});
  const r = best.s.getBoundingClientRect();
  return {x: r.left + r.width / 2, y: r.top + r.height / 2, id: best.s.__data__.data.data.id,
          slices: g.querySelectorAll('g.slice').length};
})()"""


def _explore_in_chromium(base: str, token: str, nb_path: Path, tmp: Path) -> tuple[str, dict[str, Any]]:
    """Open a copy of the notebook in JupyterLab in headless Chromium, run every cell, type
    ``sha256`` into the explorer's focus box and press Enter, then click a flame graph box:
    (the top pane's text after typing, the zoom: clicked box id, level, slices before/after)."""
    name = f"zz-explore-{secrets.token_hex(4)}.ipynb"
    _get(f"{base}/api/contents/{name}", token, "PUT",
         {"type": "notebook", "format": "json", "content": json.loads(nb_path.read_text())})
    profile = tmp / "chromium-explore"
    browser = subprocess.Popen(
        [chromium(), *[f for f in CHROMIUM_FLAGS if not f.startswith("--virtual-time-budget")], *LOOPBACK_ONLY,
         "--remote-debugging-port=0", "--window-size=1400,3000", f"--user-data-dir={profile}",
         f"{base}/lab/tree/{name}?" + urllib.parse.urlencode({"token": token})],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        page = page_of(profile)
        try:
            page.wait("!!window.jupyterapp && !!document.querySelector('.jp-Notebook .jp-Cell')", 120, "JupyterLab")
            page.wait(_KERNEL_IDLE, 120, "a kernel for the notebook")
            page.js("jupyterapp.commands.execute('notebook:run-all-cells')")
            page.wait(f"!!{_FOCUS_INPUT}", CELL_TIMEOUT_S, "the explorer's controls")
            page.wait(_KERNEL_IDLE, CELL_TIMEOUT_S, "every cell run")
            page.js(f"(() => {{ const i = {_FOCUS_INPUT}; i.focus(); i.value = 'sha256';"
                    " i.dispatchEvent(new Event('input', {bubbles: true}));"
                    " i.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', keyCode: 13, bubbles: true}));"
                    " i.dispatchEvent(new Event('change', {bubbles: true})); return true; })()")
            typed = page.wait("Array.from(document.querySelectorAll('pre')).map(e => e.textContent)"
                              ".find(t => t.startsWith('File:') && t.includes('focus=sha256'))", 60, "the focused top")
            page.wait(_KERNEL_IDLE, 60, "the explorer's update")
            box = page.js(_A_BOX)
            page.click(box["x"], box["y"])
            level = page.wait("window.__perflabFlame._fullData[0].level", 30, "a zoom")
            after = page.js("window.__perflabFlame.querySelectorAll('g.slice').length")
            return str(typed).rstrip("\n"), {"clicked": box["id"], "level": level, "slices_before": box["slices"],
                                              "slices_after": after}
        finally:
            page.close()
    finally:
        browser.terminate()
        browser.wait(timeout=30)
        _get(f"{base}/api/contents/{name}", token, "DELETE")


def _drawn_in_jupyterlab(base: str, token: str, nb: dict[str, Any], tmp: Path) -> int:
    """Save ``nb`` (with its outputs) through the server, open it in JupyterLab in headless
    Chromium (only loopback reachable) and count the plotly figures the page drew. The file
    is removed from the server's folder afterwards."""
    name = f"zz-drawn-{secrets.token_hex(4)}.ipynb"
    _get(f"{base}/api/contents/{name}", token, "PUT", {"type": "notebook", "format": "json", "content": nb})
    try:
        url = f"{base}/lab/tree/{name}?" + urllib.parse.urlencode({"token": token})
        result = subprocess.run(
            [chromium(), *[f for f in CHROMIUM_FLAGS if not f.startswith("--virtual-time-budget")], *LOOPBACK_ONLY,
             f"--virtual-time-budget={LAB_PAGE_BUDGET_MS}", "--window-size=1400,6000",
             f"--user-data-dir={tmp / 'chromium-lab'}", "--dump-dom", url],
            capture_output=True, text=True, timeout=180)
        assert result.returncode == 0, result.stderr[-2000:]
        assert "jp-Notebook" in result.stdout, result.stdout[-2000:]  # JupyterLab opened the notebook
        return drawn_figures(result.stdout)
    finally:
        _get(f"{base}/api/contents/{name}", token, "DELETE")


def test_make_lab_serves_the_notebooks_and_runs_one_in_its_kernel(tmp_path: Path) -> None:
    port, token = free_port(), secrets.token_hex(16)
    store = tmp_path / "lab.duckdb"
    runtime = tmp_path / "runtime"
    env = {**os.environ, "PERFLAB_STORE": str(store), "JUPYTER_RUNTIME_DIR": str(runtime),
           "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "HOME": str(tmp_path)}
    log = tmp_path / "lab.log"
    with log.open("wb") as fh:
        # -o install: the venv is there already (make test installed it); this runs the lab recipe only.
        make = subprocess.Popen(
            ["make", "--no-print-directory", "-o", "install", "lab",
             f"LAB_ARGS=--ServerApp.port={port} --ServerApp.port_retries=0 --IdentityProvider.token={token}"
             " --LabApp.expose_app_in_browser=True"],
            cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)
    server = None
    kernel_pids: list[int] = []
    try:
        base = f"http://127.0.0.1:{port}"
        info = _wait_for_api(base, token, make, log)
        assert info["version"]
        server = _server_process(make)
        # THEN the samples were ingested into PERFLAB_STORE before the server started
        assert f"store: {store} (bundled samples: 10 files)" in log.read_text()
        assert _listens_only_on_loopback(server, port)
        names = sorted(c["name"] for c in _get(f"{base}/api/contents", token)["content"] if c["type"] == "notebook")
        assert names == ["00-tour.ipynb", "01-load-test.ipynb", "02-profiles.ipynb", "03-database.ipynb",
                         "04-signatures.ipynb", "05-optimization-log.ipynb"]
        # WHEN a notebook session is created through the REST API and its cells run in that kernel
        session = _get(f"{base}/api/sessions", token, "POST",
                       {"path": NOTEBOOK, "type": "notebook", "name": NOTEBOOK, "kernel": {"name": "python3"}})
        kernel_id = session["kernel"]["id"]
        kc = BlockingKernelClient(connection_file=str(runtime / f"kernel-{kernel_id}.json"))
        kc.load_connection_file()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=60)
            kernel_pids = [p.pid for p in server.children(recursive=True)]
            assert kernel_pids, "the kernel is not a child of the server"
            nb = json.loads((ROOT / "notebooks" / NOTEBOOK).read_text())
            printed = _run_cells(kc, [c for c in nb["cells"] if c["cell_type"] == "code"])
            # WHEN a focus is typed into the explorer (what its Text widget does in the page)
            updated = _explorer_updates(kc, "explorer.focus.value = 'sha256'")
            profile_path = _printed(kc, "print(store.source(a)['path'])").strip()
        finally:
            kc.stop_channels()
        # THEN the kernel replaced its four panes in place; the top pane is `perflab top --focus`
        assert [kind for kind, _ in updated] == ["update_display_data"] * 4
        expected_top = run_cli("top", profile_path, "--focus", "sha256", store=tmp_path / "cli.duckdb")
        assert updated[0][1]["text/plain"] == expected_top.stdout.rstrip("\n")
        assert all("application/vnd.plotly.v1+json" in data for _, data in updated[2:])  # flame, sandwich
        # THEN the kernel showed the figures as JSON only (the renderer the notebook chose in
        # a server's kernel), and JupyterLab draws every one of them
        figures = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
                   if PLOTLY_MIMETYPE in o["data"]]
        assert len(figures) >= 3 and not any("text/html" in o["data"] for o in figures)
        assert _drawn_in_jupyterlab(base, token, nb, tmp_path) == len(figures)
        # THEN it printed, from the server's kernel, the checked top table (pprof's numbers)
        from tests.notebooks.nbval_store import expected_file

        assert printed["top"] == expected_file("02-profiles", "top").read_text(encoding="utf-8")
        assert printed["setup"] == f"store: {store} (bundled samples: 10 files)\n"
        # WHEN a reader opens the notebook in JupyterLab (headless Chromium), runs it, types a
        # focus into the explorer and clicks a box of its flame graph
        typed, zoom = _explore_in_chromium(base, token, nb_path=ROOT / "notebooks" / NOTEBOOK, tmp=tmp_path)
        # THEN the top pane turns into `perflab top --focus sha256`, and the click zooms in
        assert typed == expected_top.stdout.rstrip("\n")
        assert zoom["level"] == zoom["clicked"] and 0 < zoom["slices_after"] < zoom["slices_before"]
        assert any(s["kernel"]["id"] == kernel_id for s in _get(f"{base}/api/sessions", token))
    finally:
        # Stop by PID, as a user would with kill: SIGTERM makes Jupyter shut its kernels down.
        if server is not None:
            server.send_signal(signal.SIGTERM)
        try:
            make.wait(timeout=60)
        except subprocess.TimeoutExpired:
            make.kill()
            make.wait()
            raise
    assert server is not None and not _alive(server.pid)
    assert kernel_pids and not any(_alive(p) for p in kernel_pids)
    assert not port_listens(port)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _listens_only_on_loopback(server: psutil.Process, port: int) -> bool:
    addrs = {c.laddr.ip for c in server.net_connections("inet") if c.status == psutil.CONN_LISTEN and c.laddr.port == port}
    return bool(addrs) and addrs <= {"127.0.0.1"}
