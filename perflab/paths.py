"""Where a perflab checkout keeps things (the bundled samples, the notebooks)."""

from __future__ import annotations

from pathlib import Path

from perflab.errors import PerflabError


def project_root() -> Path:
    """The checkout holding data/samples: the package's parent (an editable install), else
    the nearest folder above the working directory (a notebook runs in notebooks/)."""
    candidates = [Path(__file__).resolve().parents[1], *Path.cwd().resolve().parents]
    candidates.insert(1, Path.cwd().resolve())
    for folder in candidates:
        if (folder / "data" / "samples").is_dir():
            return folder
    raise PerflabError("the bundled samples (data/samples) are not found above "
                       f"{Path.cwd()}; run the notebook from a perflab checkout")


def notebooks_dir() -> Path:
    return project_root() / "notebooks"
