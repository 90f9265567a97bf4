"""A search box for a flame graph drawn in a page: matching boxes lit, their share of the total.

``search_controls(div_id)`` is HTML to put after the figure's div (plotly.js already
loaded by the page). Typing a text lights every box whose frame name contains it (any
case) and dims the rest; the line beside says how many boxes and functions match and what
share of the total the matching paths hold: a box counts unless a box above it matched
too, so a recursive match counts once, as pprof's cum does. Clicking a box zooms into it
(plotly's own icicle behaviour); the bar above the graph or "whole profile" zooms back.

A page opened with ``#search=TEXT`` (or ``#zoom=BOX_ID``) runs that at load, so a headless
browser can check what a reader would see.
"""

from __future__ import annotations

import html
import json

MATCH_COLOR = "#e7298a"
DIMMED_COLOR = "#f0f0f0"

_SCRIPT = """
(function () {
  const gd = document.getElementById(DIV), box = document.getElementById(DIV + "-search"),
        out = document.getElementById(DIV + "-found"), reset = document.getElementById(DIV + "-reset");
  let base = null;
  function search(text) {
    const tr = gd.data[0];
    if (base === null) base = tr.marker.colors.slice();
    const q = text.trim().toLowerCase();
    if (!q) {
      Plotly.restyle(gd, {"marker.colors": [base]});
      out.textContent = ""; delete out.dataset.share; return;
    }
    const hit = tr.labels.map(l => String(l).toLowerCase().includes(q));
    const at = new Map(tr.ids.map((id, i) => [id, i]));
    let boxes = 0, sum = 0;
    const names = new Set();
    hit.forEach((h, i) => {
      if (!h) return;
      boxes += 1; names.add(tr.labels[i]);
      for (let p = tr.parents[i]; p; p = tr.parents[at.get(p)]) { if (hit[at.get(p)]) return; }
      sum += tr.values[i];
    });
    const share = sum / tr.values[0];
    Plotly.restyle(gd, {"marker.colors": [hit.map(h => h ? MATCH : DIM)]});
    out.dataset.share = share; out.dataset.boxes = boxes;
    out.textContent = boxes ? `${boxes} boxes of ${names.size} functions: ${(100 * share).toFixed(2)} % of the total`
                            : "no frame matches";
  }
  function zoom(id) {
    Plotly.restyle(gd, {level: id});
    out.dataset.level = id;
    out.dataset.slices = gd.querySelectorAll("g.slice").length;
  }
  function start() {
    // The figure's own script may not have drawn yet.
    if (!gd.data || !gd._fullLayout) { setTimeout(start, 50); return; }
    box.addEventListener("input", () => search(box.value));
    reset.addEventListener("click", () => zoom(gd.data[0].ids[0]));
    const hash = decodeURIComponent(location.hash.slice(1));
    if (hash.startsWith("search=")) { box.value = hash.slice(7); search(box.value); }
    if (hash.startsWith("zoom=")) {
      out.dataset.slicesBefore = gd.querySelectorAll("g.slice").length;
      zoom(hash.slice(5));
    }
  }
  start();
})();
"""


def search_controls(div_id: str) -> str:
    """The search box, its result line, a "whole profile" button and their script."""
    ident = html.escape(div_id)
    script = (_SCRIPT.replace("DIV", json.dumps(div_id)).replace("MATCH", json.dumps(MATCH_COLOR))
              .replace("DIM", json.dumps(DIMMED_COLOR)))
    return (f'<div class="flame-search"><input type="search" id="{ident}-search" '
            f'placeholder="search frames (e.g. sha256)" aria-label="search frames"> '
            f'<button type="button" id="{ident}-reset">whole profile</button> '
            f'<span id="{ident}-found"></span></div>\n<script>{script}</script>')
