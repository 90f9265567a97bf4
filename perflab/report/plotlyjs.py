"""plotly.js as one file beside the pages that draw figures, loaded by a relative path.

Inlined, plotly.js is ~4.8 MB per page: a night of 30-odd pages carried it 30-odd times
(208 MB). Here it is written once per folder (``plotly.min.js``, from the installed plotly
package, so it is the version that made the figure JSON) and each page loads it with a
``<script src>`` relative to the page, so a folder copied or moved whole still draws
offline, and nothing is fetched from a CDN.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

FILE_NAME = "plotly.min.js"


def write_plotlyjs(folder: str | os.PathLike[str]) -> Path:
    """``folder/plotly.min.js`` from the installed plotly (rewritten only when it differs)."""
    from plotly.offline import get_plotlyjs

    path = Path(folder) / FILE_NAME
    js = get_plotlyjs()
    # Left alone when it is the same bundle (size first: a different version needs no read).
    if not (path.is_file() and path.stat().st_size == len(js.encode()) and path.read_text(encoding="utf-8") == js):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(js, encoding="utf-8")
    return path


def relative_src(page: str | os.PathLike[str], plotly_js: str | os.PathLike[str]) -> str:
    """The URL of ``plotly_js`` as seen from the page ``page`` (both paths on this disk)."""
    rel = os.path.relpath(Path(plotly_js).resolve(), Path(page).resolve().parent)
    return Path(rel).as_posix()


def script_tag(src: str) -> str:
    """The tag that loads plotly.js before any figure's script runs (synchronously, in <head>).

    Without require.js on the page plotly.js defines ``window.Plotly``, which the figures'
    own scripts call.
    """
    return f'<script src="{html.escape(src)}" charset="utf-8"></script>\n'
