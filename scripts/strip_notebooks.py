#!/usr/bin/env python3
"""Keep notebooks/*.ipynb committed clean, so their diffs stay readable.

    python scripts/strip_notebooks.py            strip outputs, execution counts and editor metadata
    python scripts/strip_notebooks.py --check    only report (exit 1 if a notebook is not clean)
    python scripts/strip_notebooks.py --refresh  re-execute every notebook on a fresh store with the
                                                 bundled samples and rewrite the expected text of the
                                                 checked cells (tests/notebooks/expected/)

Clean means: no outputs and no execution counts in any cell. Cell metadata holds tags only;
notebook metadata the kernel spec and language only; cell ids are readable names, not
random ones. The few cells whose printed text is checked keep it outside the notebook, in
tests/notebooks/expected/NOTEBOOK__CELLID.txt (see notebooks/README.md).

``problems(nb)`` is what tests/notebooks/test_notebooks_clean.py asserts is empty.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
EXPECTED = ROOT / "tests" / "notebooks" / "expected"
# Ids are names a reader can follow in a diff ("setup", "top"), never nbformat's random ones.
CELL_ID = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
# What JupyterLab and nbformat generate: 8 hex digits, or a whole uuid.
RANDOM_ID = re.compile(r"^[0-9a-f]{8}(-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})?$")
NOTEBOOK_METADATA = {"kernelspec", "language_info"}
CELL_METADATA = {"tags"}
# Seconds a notebook may take with --refresh (the bundled samples need a few).
REFRESH_TIMEOUT_S = 300


def source(cell: dict[str, Any]) -> str:
    text = cell.get("source", "")
    return "".join(text) if isinstance(text, list) else text


def problems(nb: dict[str, Any]) -> list[str]:
    """Everything that keeps a notebook from being clean, one line each (empty: clean)."""
    out = []
    extra = set(nb.get("metadata", {})) - NOTEBOOK_METADATA
    if extra:
        out.append(f"notebook metadata {sorted(extra)} (keep only {sorted(NOTEBOOK_METADATA)})")
    lang = nb.get("metadata", {}).get("language_info", {})
    if set(lang) - {"name"}:
        out.append("language_info holds more than the language name (a version that churns)")
    seen: set[str] = set()
    for i, cell in enumerate(nb.get("cells", [])):
        cid = cell.get("id", "")
        where = f"cell {i} ({cid or 'no id'})"
        if not CELL_ID.match(cid) or RANDOM_ID.match(cid) or len(cid) > 40:
            out.append(f"{where}: id is not a readable name")
        if cid in seen:
            out.append(f"{where}: duplicate id")
        seen.add(cid)
        extra = set(cell.get("metadata", {})) - CELL_METADATA
        if extra:
            out.append(f"{where}: cell metadata {sorted(extra)}")
        if cell.get("cell_type") != "code":
            if cell.get("outputs") or cell.get("attachments"):
                out.append(f"{where}: outputs or attachments in a markdown cell")
            continue
        if cell.get("execution_count") is not None:
            out.append(f"{where}: execution count {cell['execution_count']}")
        if cell.get("outputs"):
            out.append(f"{where}: {len(cell['outputs'])} output(s)")
    return out


def clean(nb: dict[str, Any]) -> dict[str, Any]:
    """The clean form of ``nb`` (see the module docstring)."""
    nb = copy.deepcopy(nb)
    meta = nb.get("metadata", {})
    nb["metadata"] = {k: v for k, v in meta.items() if k in NOTEBOOK_METADATA}
    if "language_info" in nb["metadata"]:
        nb["metadata"]["language_info"] = {"name": nb["metadata"]["language_info"].get("name", "python")}
    used: set[str] = set()
    for i, cell in enumerate(nb.get("cells", [])):
        cid = cell.get("id", "")
        if not CELL_ID.match(cid) or RANDOM_ID.match(cid) or len(cid) > 40 or cid in used:
            cid = f"cell-{i}"
        cell["id"] = cid
        used.add(cid)
        cell["metadata"] = {k: v for k, v in cell.get("metadata", {}).items() if k in CELL_METADATA}
        if cell.get("cell_type") != "code":
            cell.pop("outputs", None)
            cell.pop("execution_count", None)
            continue
        cell["execution_count"] = None
        cell["outputs"] = []
    return nb


def refresh(path: Path, store_dir: Path) -> list[Path]:
    """Execute a notebook as nbval does (a fresh store with the bundled samples) and rewrite
    the expected text of its checked cells; returns the files written."""
    import nbformat
    from nbclient import NotebookClient

    checked = [f for f in sorted(EXPECTED.glob(f"{path.stem}__*.txt"))]
    if not checked:
        return []
    nb = nbformat.read(path, as_version=4)
    os.environ["PERFLAB_STORE"] = str(store_dir / "store.duckdb")  # the kernel inherits it
    NotebookClient(nb, timeout=REFRESH_TIMEOUT_S, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    cells = {c.get("id"): c for c in nb.cells}
    for f in checked:
        cell = cells[f.stem.split("__", 1)[1]]
        f.write_text("".join(o.get("text", "") for o in cell.get("outputs", [])
                             if o.get("output_type") == "stream" and o.get("name") == "stdout"), encoding="utf-8")
    return checked


def write(path: Path, nb: dict[str, Any]) -> None:
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks (default: notebooks/*.ipynb)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="report only; exit 1 when a notebook is not clean")
    mode.add_argument("--refresh", action="store_true",
                      help="re-execute on a fresh store and rewrite the checked cells' expected text")
    args = parser.parse_args(argv)
    paths = args.paths or sorted(NOTEBOOKS.glob("*.ipynb"))
    bad = 0
    with tempfile.TemporaryDirectory(prefix="perflab-refresh-") as tmp:
        for path in paths:
            nb = json.loads(path.read_text(encoding="utf-8"))
            if args.check:
                found = problems(nb)
                for p in found:
                    print(f"{path}: {p}")
                bad += bool(found)
                continue
            if args.refresh:
                for f in refresh(path, Path(tmp)):
                    print(f"{f}: refreshed")
            new = clean(nb)
            if new != nb:
                write(path, new)
                print(f"{path}: stripped")
    if args.check and bad:
        print(f"{bad} notebook(s) not clean: run python scripts/strip_notebooks.py", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
