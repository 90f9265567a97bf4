"""Several profiles read as one, as `go tool pprof a.pb.gz b.pb.gz -base c.pb.gz` reads them.

pprof merges the profiles it is given (driver fetchProfiles, profile.Merge):

* sample types must match (names equal but for a trailing ``s``); each type takes the
  smallest unit among the profiles and values are converted to it, rounded
  (ScaleProfiles); the sources are merged first, then with the bases;
* a -base profile is subtracted (its values negated); a -diff_base profile too, and
  its samples are marked, so the report's total is the bases' own total;
* identical samples (same locations, compared by mapping, relative address and Lines,
  and same labels) become one sample whose values are summed: the total, a sum of
  |value| per sample, is taken over these merged samples;
* the header: the earliest time (pprof's loop: a later zero time wins), the summed
  durations, the largest period, the comments without repeats, and the first profile's
  drop_frames, mapping, doc URL and default sample type.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from perflab.analysis.pprof_units import conversion, scale_family
from perflab.errors import PerflabError
from perflab.store import Store

if TYPE_CHECKING:
    from perflab.analysis.pprof_view import Part

_U64 = "18446744073709551616::HUGEINT"


def _wrap(expr: str) -> str:
    """``expr`` as Go's uint64 arithmetic leaves it (modulo 2**64)."""
    return f"(((({expr}) % {_U64}) + {_U64}) % {_U64})"


def sample_keys_sql(sid: int, src: int, base: bool) -> str:
    """(src, sample_idx, key): each sample's merge key, as profile.Merge compares samples."""
    size = _wrap(f"{_wrap('m.memory_limit::HUGEINT - m.memory_start')} + 4095")
    return f"""
    (WITH lines AS (
        SELECT li.location_id,
               string_agg(CASE WHEN f.function_id IS NULL THEN '' ELSE
                          f.start_line || '/' || f.name || '/' || f.system_name || '/' || f.filename END
                          || '#' || li.line, ';' ORDER BY li.line_idx)
               || '@' || arg_max(li."column", li.line_idx) AS lk
        FROM pprof_lines li
        LEFT JOIN pprof_functions f ON f.source_id = li.source_id AND f.function_id = li.function_id
        WHERE li.source_id = {sid} GROUP BY li.location_id
    ),
    locs AS (
        SELECT lo.location_id,
               concat_ws('|',
                   CASE WHEN m.mapping_id IS NULL THEN '-' ELSE
                        ({size} - {size} % 4096)::VARCHAR || '/' || m.file_offset || '/'
                        || coalesce(nullif(m.build_id, ''), nullif(m.filename, ''), '') END,
                   {_wrap("lo.address::HUGEINT - coalesce(m.memory_start, 0)")}::VARCHAR,
                   lo.is_folded::VARCHAR, coalesce(l.lk, '')) AS k
        FROM pprof_locations lo
        LEFT JOIN pprof_mappings m ON m.source_id = lo.source_id AND m.mapping_id = lo.mapping_id
        LEFT JOIN lines l ON l.location_id = lo.location_id
        WHERE lo.source_id = {sid}
    ),
    stacks AS (
        SELECT stack_id, string_agg(k, '>' ORDER BY pos) AS k FROM (
            SELECT stack_id, unnest(location_ids) AS location_id, generate_subscripts(location_ids, 1) AS pos
            FROM pprof_stacks WHERE source_id = {sid}
        ) JOIN locs USING (location_id) GROUP BY stack_id
    ),
    labels AS (
        SELECT sample_idx,
               string_agg(CASE WHEN str IS NOT NULL THEN key || '=' || str END, ',' ORDER BY key, rowid) AS s,
               string_agg(CASE WHEN str IS NULL AND (num <> 0 OR num_unit IS NOT NULL)
                               THEN key || '=' || num END, ',' ORDER BY key, rowid) AS n
        FROM pprof_labels WHERE source_id = {sid} GROUP BY sample_idx
    )
    SELECT {src} AS src, p.sample_idx,
           coalesce(st.k, '') || '~' || coalesce(lb.s, '') || '~' || coalesce(lb.n, '') || '~{'base' if base else ''}'
               AS key
    FROM pprof_samples p
    LEFT JOIN stacks st USING (stack_id)
    LEFT JOIN labels lb USING (sample_idx)
    WHERE p.source_id = {sid})"""


def merged_total(store: Store, parts: list[Part], sample_rows: str, mean: bool) -> tuple[int, int]:
    """(Σ |value| over the merged samples, Σ of -mean's divisor), or the -diff_base
    profiles' own when they have one, as pprof's report computes its total."""
    keys = " UNION ALL ".join(sample_keys_sql(int(p.sid), i, p.base) for i, p in enumerate(parts))
    row = store.con.execute(f"""
        WITH k AS ({keys}),
        merged AS (
            SELECT k.key, any_value(s.base) AS base, sum(s.v) AS v, sum(s.d) AS d
            FROM {sample_rows} s JOIN k USING (src, sample_idx)
            GROUP BY k.key
        )
        SELECT coalesce(sum(abs(v)), 0), coalesce(sum(d), 0),
               coalesce(sum(abs(v)) FILTER (WHERE base), 0), coalesce(sum(d) FILTER (WHERE base), 0)
        FROM merged""").fetchall()[0]
    total, div, base_total, base_div = (int(x) for x in row)
    if base_total > 0:
        total, div = base_total, base_div
    return total, div if mean else 0


def _common_unit(units: list[str], what: str) -> tuple[str, list[float]]:
    """pprof's CommonValueType over one sample type of several profiles: the smallest
    unit, and each profile's ratio to it (1 for a lone profile)."""
    if len(units) <= 1:
        return units[0], [1.0] * len(units)
    unit = units[0]
    for u in units[1:]:
        if u != unit and (scale_family(u) is None or scale_family(u) != scale_family(unit)):
            raise PerflabError(f"{what}: incompatible units {unit!r} and {u!r}; pprof cannot merge them")
        f, d, _ = conversion(u, unit)
        if (1 * f) / d < 1:
            unit = u
    ratios = []
    for u in units:
        f, d, _ = conversion(u, unit)
        ratios.append((1 * f) / d)
    return unit, ratios


def merged_types(types: list[list[dict[str, str]]], n_sources: int, defaults: list[str | None]
                 ) -> tuple[list[dict[str, str]], list[list[int]], list[list[tuple[float, ...]]], str | None]:
    """The merged profile's sample types, and per profile the index of each of them in
    its own types and the ratios its values go through (pprof's CompatibilizeSampleTypes,
    which keeps the type names every profile holds exactly once, and ScaleProfiles: the
    sources merged first, the bases among themselves, then both).

    The first ``n_sources`` profiles are the sources, the rest the bases; ``defaults``
    their default_sample_type. The last value returned is the merged profile's default
    sample type: a profile whose types changed names its own if still there, else the
    first common type; the first profile that names one wins.
    """
    names = [t["type"] for t in types[0]]
    # Even a lone profile goes through this: a type name it repeats is dropped.
    common = [n for n in names if all(sum(x["type"] == n for x in t) == 1 for t in types)]
    if not common:
        raise PerflabError("the profiles have no sample type in common; pprof cannot merge them")
    columns = [[[x["type"] for x in t].index(n) for n in common] for t in types]
    units = [[t[c]["unit"] for c in cols] for t, cols in zip(types, columns, strict=True)]
    stages: list[list[tuple[float, ...]]] = [[] for _ in types]
    merged_units = []
    for j, name in enumerate(common):
        groups = [range(0, n_sources), range(n_sources, len(types))]
        group_units = []
        for g in groups:
            if not g:
                continue
            unit, ratios = _common_unit([units[i][j] for i in g], f"sample type {name}")
            for i, r in zip(g, ratios, strict=True):
                _add(stages[i], 0, j, len(common), r)
            group_units.append((g, unit))
        if len(group_units) == 2:
            unit, ratios = _common_unit([u for _, u in group_units], f"sample type {name}")
            for (g, _), r in zip(group_units, ratios, strict=True):
                for i in g:
                    _add(stages[i], 1, j, len(common), r)
        else:
            unit = group_units[0][1]
        merged_units.append(unit)
    merged = [{"type": n, "unit": u} for n, u in zip(common, merged_units, strict=True)]
    default = None
    for t, cols, d in zip(types, columns, defaults, strict=True):
        if cols != list(range(len(t))):
            d = d if d in common else common[0]
        if d:
            default = d
            break
    return merged, columns, [[tuple(st) for st in stage] for stage in stages], default


def _add(stages: list[Any], stage: int, j: int, n: int, ratio: float) -> None:
    while len(stages) <= stage:
        stages.append([1.0] * n)
    stages[stage][j] = ratio


def merged_info(infos: list[dict[str, Any]]) -> dict[str, Any]:
    """The header facts of the merged profile (see the module docstring)."""
    time = duration = period = 0
    comments: list[str] = []
    for info in infos:
        t = info.get("time_nanos") or 0
        if time == 0 or t < time:
            time = t
        duration += info.get("duration_nanos") or 0
        if period == 0 or period < (info.get("period") or 0):
            period = info.get("period") or 0
        comments += [c for c in info.get("comments") or [] if c not in comments]
    return dict(
        infos[0],
        time_nanos=time or None,
        duration_nanos=duration or None,
        period=period,
        comments=comments,
        doc_url=next((i["doc_url"] for i in infos if i.get("doc_url")), None),
        default_sample_type=next((i["default_sample_type"] for i in infos if i.get("default_sample_type")), None),
        main_mapping=next((i["main_mapping"] for i in infos if i.get("main_mapping")), None),
    )
