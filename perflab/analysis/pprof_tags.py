"""pprof's tag filters (-tagfocus, -tagignore, -tagshow, -taghide) over pprof_labels.

The rules (pprof's driver, read for semantics):

* ``KEY=VALUE`` looks at label KEY only; a bare VALUE at every label;
* VALUE is a numeric range when it is exactly ``N``, ``N:``, ``:N`` or ``N:M``, each
  number with an optional unit (``1kb``, ``64MB``, ``10ms``): a numeric label matches
  when its value, in the profile's unit for that key (the first unit any sample gives
  it, else ``bytes`` for ``request``/``alignment``, else the key's name), scales to the
  filter's own unit and lies in the range; a filter without a unit matches only keys
  whose unit pprof does not know (``count``...), as pprof does;
* otherwise VALUE is a comma-separated list of regexps: with a KEY, a sample matches
  when some value of KEY matches one of them; without, when *each* regexp matches some
  ``key:value`` of the sample;
* a label is a string label when its string is set, else numeric when its number or
  unit is set (pprof drops a label that has neither);
* tagfocus keeps matching samples, tagignore drops them; tagshow/taghide only choose
  which labels graphs show, so -top only lists them among the active filters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

from perflab.analysis.pprof_frames import check_regexp
from perflab.analysis.pprof_units import conversion
from perflab.store import Store

_NUMBER = re.compile(r"([+-]?[0-9]+)([A-Za-z]+)?")


@dataclass(frozen=True)
class TagFilters:
    tagfocus: str | None = None
    tagignore: str | None = None
    tagshow: str | None = None
    taghide: str | None = None

    def active(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))

    def legend(self) -> list[str]:
        return [f"{f.name}={getattr(self, f.name)}" for f in fields(self) if getattr(self, f.name)]


def _range(text: str) -> tuple[float | None, float | None, str] | None:
    """(low, high, unit) when ``text`` is one of pprof's numeric ranges, else None."""
    found = list(_NUMBER.finditer(text))[:2]
    if not found:
        return None
    first = found[0]
    value, unit = _scaled(int(first.group(1)), first.group(2) or "")
    if len(found) == 1:
        whole = first.group(0)
        if text == whole:
            return value, value, unit
        if text == whole + ":":
            return value, None, unit
        if text == ":" + whole:
            return None, value, unit
        return None
    second = found[1]
    if text != first.group(0) + ":" + second.group(0):
        return None
    f, d, unit2 = conversion(second.group(2) or "", unit)
    if unit2 != unit:
        return None
    return value, (int(second.group(1)) * f) / d, unit


def _scaled(number: int, unit: str) -> tuple[float, str]:
    f, d, out = conversion(unit, unit)
    return (number * f) / d, out


def _matching_samples_sql(store: Store, sid: int, units: dict[str, str], option: str,
                          value: str) -> tuple[str, dict[str, object]]:
    """SQL selecting the sample_idx of the samples that ``value`` matches, and its params."""
    key: str | None = None
    if "=" in value:
        key, value = value.split("=", 1)
    params: dict[str, object] = {"sid": sid}
    rng = _range(value)
    if rng is not None:
        low, high, unit = rng
        wanted = [k for k in units if key is None or k == key]
        conds = []
        for i, k in enumerate(wanted):
            f, d, out = conversion(units[k], unit)
            if out != unit:
                continue  # pprof's scaled unit differs: never a match for this key
            params.update({f"k{i}": k, f"f{i}": f, f"d{i}": d})
            scaled = f"((num::DOUBLE * $f{i}::DOUBLE) / $d{i}::DOUBLE)"
            bounds = ["$low::DOUBLE <= " + scaled if low is not None else "TRUE",
                      scaled + " <= $high::DOUBLE" if high is not None else "TRUE"]
            params.update({"low": low} if low is not None else {})
            params.update({"high": high} if high is not None else {})
            conds.append(f"(key = $k{i} AND {' AND '.join(bounds)})")
        if not conds:
            return "SELECT NULL::BIGINT AS sample_idx WHERE FALSE", {}
        return (f"""SELECT DISTINCT sample_idx FROM pprof_labels
                    WHERE source_id = $sid AND str IS NULL AND (num <> 0 OR num_unit IS NOT NULL)
                      AND ({' OR '.join(conds)})""", params)
    regexps = value.split(",")
    for rx in regexps:
        check_regexp(store, option, rx)
    for i, rx in enumerate(regexps):
        params[f"r{i}"] = rx
    if key is not None:
        params["key"] = key
        any_rx = " OR ".join(f"regexp_matches(str, $r{i})" for i in range(len(regexps)))
        return (f"""SELECT DISTINCT sample_idx FROM pprof_labels
                    WHERE source_id = $sid AND str IS NOT NULL AND key = $key AND ({any_rx})""", params)
    each = " AND ".join(f"bool_or(regexp_matches(key || ':' || str, $r{i}))" for i in range(len(regexps)))
    return (f"""SELECT sample_idx FROM pprof_labels WHERE source_id = $sid AND str IS NOT NULL
                GROUP BY sample_idx HAVING {each}""", params)


def _key_units(store: Store, sids: list[int]) -> dict[str, str]:
    """pprof's NumLabelUnits: each numeric key's first non-empty unit, in sample order."""
    order = " ".join(f"WHEN {int(sid)} THEN {i}" for i, sid in enumerate(sids))
    rows = store.con.execute(
        f"""SELECT key, first(num_unit ORDER BY CASE source_id {order} END, sample_idx, rowid)
                   FILTER (WHERE num_unit <> '')
            FROM pprof_labels
            WHERE source_id IN ({", ".join(str(int(x)) for x in sids)})
              AND str IS NULL AND (num <> 0 OR num_unit IS NOT NULL)
            GROUP BY key"""
    ).fetchall()
    return {k: u or ("bytes" if k in ("alignment", "request") else k) for k, u in rows}


def kept_samples_sql(store: Store, sids: list[int], tags: TagFilters) -> tuple[str, dict[str, object]] | None:
    """A condition on the merged samples (src, sample_idx) keeping those tagfocus and
    tagignore keep (None when neither is set), with its parameters."""
    parts = []
    params: dict[str, object] = {}
    units = _key_units(store, sids)
    for option, negate in (("tagfocus", False), ("tagignore", True)):
        value = getattr(tags, option)
        if not value:
            continue
        selects = []
        for i, sid in enumerate(sids):
            sql, p = _matching_samples_sql(store, sid, units, option, value)
            for name in list(p):
                sql = re.sub(rf"\${name}\b", f"${option}_{i}_{name}", sql)
                p[f"{option}_{i}_{name}"] = p.pop(name)
            params.update(p)
            selects.append(f"SELECT ({i}::BIGINT << 40) | sample_idx FROM ({sql})")
        parts.append(f"((src::BIGINT << 40) | sample_idx) {'NOT IN' if negate else 'IN'} "
                     f"({' UNION ALL '.join(selects)})")
    if not parts:
        return None
    return " AND ".join(parts), params
