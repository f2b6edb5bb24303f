"""The results contract: figures and headlines a notebook records, in one documented shape.

Inside ``physml render`` the environment variable ``PHYSML_RESULTS_FILE`` names the notebook's
results file (a temporary path that the renderer moves into ``reports/<study>/NN_topic.json``
only when the notebook succeeds). Interactively, values are kept in memory
(:func:`recorded`, :func:`headlines`), so a notebook behaves the same in JupyterLab.

Schema of the results file (``reports/<study>/NN_topic.json``)::

    {"notebook": "study/NN_topic", "status": "ok", "params": {...}, "provenance": {...},
     "inputs": {"notebook": sha256, "params": sha256, "library": sha256},
     "figures": {
        "<name>": {"value": number | bool | str, "unit": str | null, "note": str | null},
        "<name>": {"value": mean, "ci_low": low, "ci_high": high, "n": n,
                   "unit": str | null, "note": str | null},           # a stats.CI
        ...},
     "headlines": {"<key>": <Headline.as_dict()>, ...}}

Every figure is one key: a number (or bool / short string) with its unit, or a mean with its
95% CI. A dict passed to :func:`record` is stored flattened as ``name.sub`` keys; lists are
refused (record one key per figure).

A *headline* (:func:`headline`) is one of the one to three comparisons a study exists for:
the physics answer, the ML answer and the hybrid's, each a mean with its 95% CI over seeds or
folds, and a verdict computed here (never typed) from :func:`physml.stats.compare`.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from physml import stats

ENV_VAR = "PHYSML_RESULTS_FILE"
SIDES = ("physics", "ml", "hybrid")
VERDICTS = ("physics", "ml", "hybrid", "tie", "inconclusive")

_memory: dict[str, dict[str, Any]] = {}
_headlines: dict[str, dict[str, Any]] = {}


# --------------------------------------------------------------------------- figures


def to_jsonable(value: Any, *, where: str = "value") -> Any:
    """Convert numpy scalars/arrays, tuples and objects with ``as_dict`` into plain JSON types.

    Non-finite floats are kept as the strings ``"nan"``, ``"inf"``, ``"-inf"`` (``None`` would
    hide them). Anything else that is not JSON-serialisable raises ``TypeError`` naming it.
    """
    if isinstance(value, dict):
        return {str(k): to_jsonable(v, where=f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v, where=f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist(), where=where)
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else str(v)
    if value is None or isinstance(value, str):
        return value
    if hasattr(value, "as_dict"):
        return to_jsonable(value.as_dict(), where=where)
    raise TypeError(f"cannot record {where}: {type(value).__name__} is not JSON-serialisable")


def _ci_entry(ci: stats.CI) -> dict[str, Any]:
    return {"value": to_jsonable(ci.mean), "ci_low": to_jsonable(ci.low),
            "ci_high": to_jsonable(ci.high), "n": int(ci.n)}


def _as_ci(value: Any) -> stats.CI | None:
    """A CI from a CI, a Comparison / Verdict (its difference), or a dict shaped like one."""
    if isinstance(value, stats.CI):
        return value
    if isinstance(value, stats.Comparison | stats.Verdict):
        return value.diff
    if isinstance(value, Mapping):
        if {"mean", "low", "high"} <= set(value):
            return stats.CI(float(value["mean"]), float(value["low"]), float(value["high"]),
                            int(value.get("n", 0)))
        if {"value", "ci_low", "ci_high"} <= set(value):
            return stats.CI(float(value["value"]), float(value["ci_low"]),
                            float(value["ci_high"]), int(value.get("n", 0)))
    return None


def _flatten(name: str, value: Any) -> dict[str, dict[str, Any]]:
    """``{key: entry-without-unit}`` for one recorded value (dicts flattened to ``name.sub``)."""
    if isinstance(value, stats.TargetCheck):
        return {name: _ci_entry(value.ci) | {"target": to_jsonable(value.target),
                                             "outcome": value.outcome, "better": value.better}}
    ci = _as_ci(value)
    if ci is not None:
        entry = _ci_entry(ci)
        if isinstance(value, stats.Comparison):
            entry["verdict"] = value.verdict
        if isinstance(value, stats.Verdict):
            entry["verdict"] = value.outcome
        return {name: entry}
    if isinstance(value, Mapping):
        if not value:
            raise TypeError(f"results.record {name!r}: empty dict; record one key per figure")
        out: dict[str, dict[str, Any]] = {}
        for k, v in value.items():
            out.update(_flatten(f"{name}.{k}", v))
        return out
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, (bool, np.bool_, int, np.integer, float, np.floating, str)):
        return {name: {"value": to_jsonable(value, where=name)}}
    raise TypeError(
        f"results.record {name!r}: a figure is a number, bool, str or stats.CI (or a dict of "
        f"those, stored as {name}.<key>); got {type(value).__name__}. Record one key per figure."
    )


def record(name: str, value: Any, unit: str | None = None, note: str | None = None) -> Any:
    """Record one named figure (or a dict of them); returns ``value`` unchanged.

    Parameters
    ----------
    name : str
        Key in the results file, e.g. ``"rk4_tracks_per_second"``.
    value : number, bool, str, :class:`physml.stats.CI` (or Comparison / Verdict: their
        difference CI and verdict; a :class:`physml.stats.TargetCheck`: its CI with the
        ``target``, ``outcome`` and ``better`` beside it), or a dict ``{sub: value}`` stored as
        keys ``name.sub``.
    unit, note : str, optional
        Unit of the value (or of every value in the dict) and a short human-readable note.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"results.record: name must be a non-empty string, got {name!r}")
    entries = _flatten(name, value)
    for key, entry in entries.items():
        entry.update(unit=unit, note=note)
        _memory[key] = entry
    path = os.environ.get(ENV_VAR)
    if path:
        _write(Path(path), "figures", entries)
    return value


def recorded() -> dict[str, dict[str, Any]]:
    """Every figure recorded in this process so far: ``{name: entry}``."""
    return dict(_memory)


def _write(path: Path, section: str, entries: dict[str, Any]) -> None:
    data = json.loads(path.read_text()) if path.exists() else {}
    data.setdefault(section, {}).update(entries)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def load(path: str | Path) -> dict[str, Any]:
    """Read a results JSON written by ``physml render`` (figures, headlines, params, ...)."""
    return json.loads(Path(path).read_text())


#: Set by ``physml render`` to the folder the reports of this render go to (``--out``).
REPORTS_ENV_VAR = "PHYSML_REPORTS_DIR"


def report_file(notebook: str) -> Path:
    """The results JSON of another notebook, ``"<study>/<NN_topic>"``, in the reports folder
    of the current render (``physml render --out``), or in ``reports/`` interactively."""
    from physml import paths

    base = os.environ.get(REPORTS_ENV_VAR)
    return (Path(base) if base else paths.reports_dir()) / f"{notebook}.json"


def fold_figures(notebook: str, name: str, keys: list[str]) -> dict[str, float]:
    """Per-fold figures another notebook recorded as ``name.<key>`` (keys from
    :func:`physml.splits.fold_key`), for a paired comparison on the same folds.

    Returns ``{key: value}`` for every key of ``keys``. Raises ``LookupError`` saying why it
    cannot: the report is missing, failed, or stale (its notebook or study library changed
    since it was rendered, :func:`physml.scoreboard.freshness`), or it holds none or only some
    of these folds (it ran on other folds)."""
    from physml import paths, scoreboard

    path = report_file(notebook)
    if not path.exists():
        raise LookupError(f"no report of {notebook} at {path}: render it first")
    data = load(path)
    if data.get("status") != "ok":
        raise LookupError(f"the report of {notebook} at {path} has status "
                          f"{data.get('status')!r}, not 'ok'")
    stale = scoreboard.freshness(data, paths.notebooks_dir() / f"{notebook}.ipynb")
    if stale:
        raise LookupError(f"the report of {notebook} is stale ({stale}): render it again")
    figures = data.get("figures", {})
    have = {k[len(name) + 1:] for k in figures if k.startswith(name + ".")}
    missing = [k for k in keys if k not in have]
    if missing:
        raise LookupError(f"the report of {notebook} has {name} on {len(have)} fold(s), "
                          f"{len(keys) - len(missing)} of them these {len(keys)}: it ran on "
                          f"other folds (other files, n_splits or seeds)")
    return {k: float(figures[f"{name}.{k}"]["value"]) for k in keys}


# --------------------------------------------------------------------------- headlines


@dataclass
class Headline:
    """One physics-vs-ML-vs-hybrid comparison with its computed verdict (see :func:`headline`)."""

    key: str
    question: str
    metric: str
    unit: str | None
    better: str
    margin: float
    scale: str
    paired: bool
    sides: dict[str, stats.CI]
    names: dict[str, str]
    verdict: str
    detail: str
    pairs: dict[str, stats.Verdict] = field(default_factory=dict)
    anchor: dict[str, Any] | None = None
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        def side(s: str) -> dict[str, Any] | None:
            ci = self.sides.get(s)
            if ci is None:
                return None
            return {**_ci_entry(ci), "unit": self.unit, "name": self.names.get(s),
                    "samples": to_jsonable(list(ci.samples))}

        return {
            "key": self.key, "question": self.question, "metric": self.metric,
            "unit": self.unit, "better": self.better, "margin": self.margin,
            "scale": self.scale, "paired": self.paired,
            **{s: side(s) for s in SIDES},
            "verdict": self.verdict, "detail": self.detail,
            "pairs": {k: v.as_dict() for k, v in self.pairs.items()},
            "anchor": self.anchor, "note": self.note,
        }

    def markdown(self) -> str:
        """One sentence for the notebook: the answers with CIs and the computed verdict."""
        parts = []
        for s in SIDES:
            if s in self.sides:
                # "physics, *name*: value": names may hold parentheses and commas themselves
                nm = f", *{self.names[s]}*" if self.names.get(s) else ""
                parts.append(f"{_SIDE_LABEL[s]}{nm}: {_fmt_ci(self.sides[s], self.unit)}")
        anchor = ""
        if self.anchor:
            anchor = f"; reference: {self.anchor['name']} {self.anchor['text']}"
        return (f"**{self.question}** {self.metric} ({self.better} is better): "
                + "; ".join(parts) + f"{anchor}. Verdict: **{self.verdict}** — {self.detail}.")

    def _repr_markdown_(self) -> str:
        return self.markdown()


_SIDE_LABEL = {"physics": "physics", "ml": "ML", "hybrid": "hybrid"}


def _fmt_ci(ci: stats.CI, unit: str | None) -> str:
    u = f" {unit}" if unit else ""
    return format_ci(ci.mean, ci.low, ci.high) + u


def _side_ci(side: str, value: Any, scale: str, bounds: stats.Bounds | None) -> stats.CI:
    if isinstance(value, stats.CI):
        if not value.samples:
            raise ValueError(
                f"headline side {side!r}: this CI carries no per-seed samples; pass the values "
                "(or a CI from physml.stats.mean_ci) so the verdict can be tested")
        values = np.asarray(value.samples, dtype=float)
    elif isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(
            f"headline side {side!r}: got a single number ({value!r}), which has no CI; pass the "
            "per-seed / per-fold values")
    else:
        values = np.asarray(value, dtype=float).ravel()
    if values.size < 2 or not np.all(np.isfinite(values)):
        raise ValueError(
            f"headline side {side!r}: needs >= 2 finite per-seed / per-fold values, got "
            f"{values.tolist()}")
    if scale == "log":
        if np.any(values <= 0):
            raise ValueError(f"headline side {side!r}: scale='log' needs positive values")
        return stats.geometric_mean_ci(values, bounds=bounds)
    return stats.mean_ci(values, bounds=bounds)


def _anchor(anchor: Mapping[str, Any] | None, unit: str | None,
            bounds: stats.Bounds | None = None) -> dict[str, Any] | None:
    """The stored anchor; per-seed values get a mean CI, clipped to the headline's ``bounds``
    when the anchor is in the headline's own metric (no ``"unit"`` of its own): a clock's
    accuracy over two folds must not read [0.18, 1.08]."""
    if anchor is None:
        return None
    if not isinstance(anchor, Mapping) or "name" not in anchor or "value" not in anchor:
        raise ValueError("headline anchor: expected {'name': ..., 'value': ..., 'source': ...}")
    v = anchor["value"]
    own_metric = "unit" not in anchor
    unit = anchor.get("unit", unit)  # a reference may be in other units (e.g. a ratio)
    ci = _as_ci(v)
    if ci is None and not isinstance(v, (int, float, np.integer, np.floating)):
        ci = stats.mean_ci(v, bounds=bounds if own_metric else None)
    out: dict[str, Any] = {"name": str(anchor["name"]), "source": anchor.get("source"),
                           "unit": unit}
    if ci is not None:
        out.update(_ci_entry(ci))
        out["text"] = _fmt_ci(ci, unit)
    else:
        out["value"] = to_jsonable(v)
        out["text"] = format_number(v) + (f" {unit}" if unit else "")
    return out


def _check_arguments(key: Any, better: Any, scale: Any, margin: Any,
                     typed: Mapping[str, Any]) -> None:
    """Refuse a typed verdict and malformed key / direction / scale / margin."""
    if typed:
        bad = ", ".join(sorted(typed))
        raise TypeError(
            f"headline {key!r}: unexpected argument(s) {bad}; the verdict is computed from the "
            "sides' values, never typed")
    if not isinstance(key, str) or not key.replace("_", "").isalnum():
        raise ValueError(f"headline: key must be an identifier, got {key!r}")
    if better not in stats.BETTER:
        raise ValueError(f"headline {key!r}: better must be one of {stats.BETTER}, got {better!r}")
    if scale not in stats.SCALES:
        raise ValueError(f"headline {key!r}: scale must be one of {stats.SCALES}, got {scale!r}")
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not margin > 0:
        raise ValueError(f"headline {key!r}: margin must be a positive number, got {margin!r}")


def headline(
    key: str,
    question: str,
    metric: str,
    unit: str | None,
    better: str,
    *,
    physics: Any = None,
    ml: Any = None,
    hybrid: Any = None,
    margin: float,
    anchor: Mapping[str, Any] | None = None,
    names: Mapping[str, str] | None = None,
    paired: bool = True,
    scale: str = "linear",
    bounds: stats.Bounds | None = None,
    note: str | None = None,
    **typed: Any,
) -> Headline:
    """Record one headline comparison of the study and compute its verdict.

    Parameters
    ----------
    key : str
        Identifier, unique within the study (e.g. ``"heldout_state_accuracy"``).
    question, metric, unit : str
        What is compared, the metric's name and unit (``None`` for a unitless fraction).
    better : {"higher", "lower"}
        Which direction of the metric is better.
    physics, ml, hybrid : array of per-seed / per-fold values (>= 2), or :class:`stats.CI`
        with samples, or None for an absent side. At least two sides.
    margin : float
        Equivalence margin declared in the study's params: a tie needs TOST within it (metric
        unit for ``scale="linear"``; a fraction for ``scale="log"``, 0.1 = within x1.1).
    anchor : dict, optional
        ``{"name", "value", "source"}`` and optionally ``"unit"`` (default: the headline's):
        the simplest baseline or the source study's figure. Per-seed values get a mean CI,
        clipped to ``bounds`` unless the anchor names a unit of its own.
    names : dict, optional
        Which method stands for each side, e.g. ``{"ml": "random forest"}``.
    paired : bool
        True when all sides were scored on the same seeds / folds (same length, same order).
    scale : {"linear", "log"}
        "log" for speeds and quantities spanning decades (geometric means, ratio CIs).
    bounds : (low, high), optional
        The metric's range, e.g. ``(0, 1)`` for an accuracy, ``(0, None)`` for an error: each
        side's CI is clipped to it (a value outside it raises). The verdict does not use it.

    The verdict is "physics", "ml" or "hybrid" when the best side's difference from every
    other side has a 95% CI that excludes zero; "tie" when it is not separated from some
    sides but equivalent to each of them (TOST within ``margin``) and separated from the
    rest; "inconclusive" otherwise. A verdict cannot be passed in.
    """
    _check_arguments(key, better, scale, margin, typed)
    given = {s: v for s, v in (("physics", physics), ("ml", ml), ("hybrid", hybrid))
             if v is not None}
    if len(given) < 2:
        raise ValueError(f"headline {key!r}: needs at least two of physics / ml / hybrid")
    sides = {s: _side_ci(s, v, scale, bounds) for s, v in given.items()}
    if paired:
        lengths = {s: len(ci.samples) for s, ci in sides.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(
                f"headline {key!r}: paired=True needs the same seeds / folds on every side, got "
                f"{lengths} values; pass paired=False for independent samples")
    names = dict(names or {})
    unknown = set(names) - set(SIDES)
    if unknown:
        raise ValueError(f"headline {key!r}: names has unknown sides {sorted(unknown)}")
    verdict_, detail, pairs = _decide(sides, better=better, margin=float(margin),
                                      paired=paired, scale=scale)
    h = Headline(key, question, metric, unit, better, float(margin), scale, paired, sides,
                 names, verdict_, detail, pairs, _anchor(anchor, unit, bounds), note)
    entry = to_jsonable(h.as_dict(), where=f"headline {key}")
    _headlines[key] = entry
    path = os.environ.get(ENV_VAR)
    if path:
        _write(Path(path), "headlines", {key: entry})
    return h


def _decide(sides: dict[str, stats.CI], *, better: str, margin: float, paired: bool,
            scale: str) -> tuple[str, str, dict[str, stats.Verdict]]:
    """Verdict, a one-line reason, and every pairwise comparison of the best side."""
    sign = 1.0 if better == "higher" else -1.0
    order = sorted(sides, key=lambda s: -sign * sides[s].mean)
    best = order[0]
    pairs = {
        f"{best}_vs_{other}": stats.compare(sides[best].samples, sides[other].samples,
                                            better=better, margin=margin, paired=paired,
                                            scale=scale)
        for other in order[1:]
    }
    outcome = {other: pairs[f"{best}_vs_{other}"].outcome for other in order[1:]}
    beaten = [o for o, r in outcome.items() if r == "a"]
    tied = [o for o, r in outcome.items() if r == "tie"]
    unclear = [o for o, r in outcome.items() if r in ("inconclusive", "b")]
    label = _SIDE_LABEL
    what = "ratio" if scale == "log" else "difference"
    if not tied and not unclear:
        return best, (f"{label[best]} is best; its {what} to "
                      + ", ".join(label[o] for o in beaten) + " has a 95% CI that excludes "
                      + ("1" if scale == "log" else "0")), pairs
    if tied and not unclear:
        rest = f", and together they beat {', '.join(label[o] for o in beaten)}" if beaten else ""
        return "tie", (f"{label[best]} and {', '.join(label[o] for o in tied)} are equivalent "
                       f"within ±{margin:g}{' (fraction)' if scale == 'log' else ''} (TOST, "
                       f"alpha 0.05){rest}"), pairs
    return "inconclusive", (f"{label[best]} has the best mean, but its {what} to "
                            + ", ".join(label[o] for o in unclear)
                            + " is neither CI-separated nor equivalent within the margin"), pairs


def headlines() -> dict[str, dict[str, Any]]:
    """Every headline recorded in this process so far: ``{key: Headline.as_dict()}``."""
    return dict(_headlines)


def ci_parts(value: Any, low: Any, high: Any) -> tuple[str, str, str]:
    """A headline's ``value``, ``low`` and ``high`` as text: four significant digits each,
    trailing zeros kept (:func:`physml.stats.interval_parts`); a missing number (None, as JSON
    stores NaN) reads ``nan``."""
    num = [math.nan if v is None else float(v) for v in (value, low, high)]
    return stats.interval_parts(*num, ".4g")


def format_ci(value: Any, low: Any, high: Any) -> str:
    """``value [low, high]`` as :func:`ci_parts` writes the numbers.

    >>> format_ci(0.8059, 0.6999, 0.912)
    '0.8059 [0.6999, 0.9120]'
    """
    v, lo, hi = ci_parts(value, low, high)
    return f"{v} [{lo}, {hi}]"


_INTERVAL_COMMA = re.compile(r"(\[[^\[\]]*?), (?=[^\[\]]*\])")


def keep_intervals_whole(text: str) -> str:
    """``text`` with a no-break space after the comma inside every ``[low, high]``, so that an
    interval ``m [low, high]`` in an HTML table or sentence may break only before its bracket.

    >>> keep_intervals_whole("0.5 [0.4, 0.6]; a, b") == "0.5 [0.4,\u00a00.6]; a, b"
    True
    >>> keep_intervals_whole("1,583,000 [1,457,000, 1,719,000]").split("\u00a0")
    ['1,583,000 [1,457,000,', '1,719,000]']
    """
    return _INTERVAL_COMMA.sub("\\1,\u00a0", text)


def count_noun(n: Any, noun: str) -> str:
    """``n`` and ``noun``, the noun plural unless n is 1: for prose and captions, never
    "2 thread(s)".

    >>> [count_noun(n, "thread") for n in (1, 2, 0)] + [count_noun(12000, "track")]
    ['1 thread', '2 threads', '0 threads', '12,000 tracks']
    """
    n = int(n) if float(n).is_integer() else float(n)
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def format_number(v: Any) -> str:
    """Four significant digits; thousands separators instead of exponents up to 1e9. For a
    single number such as a cited anchor, so trailing zeros are dropped (3.7 stays 3.7: a
    source's figure is not made to look more precise); a measured interval goes through
    :func:`format_ci`.

    >>> [format_number(x) for x in (299812.7, 0.0012345, 12.3456, 3.2e11, "nan")]
    ['299,800', '0.001234', '12.35', '3.2e+11', 'nan']
    """
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        return str(v)
    v = float(v)
    if not math.isfinite(v):
        return str(v)
    if 1e4 <= abs(v) < 1e9:
        return f"{float(f'{v:.4g}'):,.0f}"
    return f"{v:.4g}"

