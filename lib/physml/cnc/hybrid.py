"""The program-alignment hybrid: kinematic durations + sensor emissions, decoded with Viterbi.

The programs are known, so the question "which line is executing" becomes "where in the
program is the machine". For each known program:

1. :mod:`physml.cnc.kinematics` gives every line its duration (path length / feed, rapid rate,
   arcs), carried through the modal state; the durations, scaled to status rows by the
   sampling rate and one time-scale factor fitted on the training files, lay the program out
   on a timeline cut into bins (:class:`Timeline`).
2. A sensor classifier (histogram gradient boosting on trailing-window statistics of the
   allowed channels, trained on the training files only) scores each row's motion class
   ``G0 G1 G2 G3 none``; a bin's emission is the class of its line, as a scaled likelihood
   ``weight * (log p(class | sensors) - log p(class))`` (training class frequencies).
3. :func:`physml.cnc.alignment.viterbi_time_warp` finds the best monotone path through the
   timeline (the pace may vary around the kinematic clock); the best-scoring program is the
   recording's program, so *which* program runs is inferred from the sensors and the
   recording's length, never from ``gcode_string``.

The decoding parameters (:data:`DECODING`: sensor weight, pace spread, largest advance) are
chosen per outer fold by :func:`select_decoding` on inner validation files drawn from that
fold's training files only; the fitted timelines and classifier do not depend on them, so each
inner fold is fitted once and every candidate only re-decodes.

Options chosen the same way (:data:`FIT_CHOICES` refit the classifier once per inner fold and
value): ``emission_features`` (``"window"`` trailing statistics or ``"motion"`` centred
multi-scale motion features, :mod:`physml.cnc.motion`) and ``decoder`` (:data:`DECODERS`: best
path or per-row posterior). ``durations="template"`` lays the program out as the training
recordings' row-wise modal run (:func:`modal_run`). :func:`phase_check` measures how much a
status row can tell at all: lines shorter than a row are reported only when a row samples them.

``weight = 0`` removes the sensors: the kinematic model alone, stretched over the recording
(the headline's physics side). Controller fields are used only to rebuild the programs' text
from the training recordings (feeds and modes of unreported lines, see
:func:`physml.cnc.kinematics.feeds_from_reports`), never for a row being predicted.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import pandas as pd

from . import alignment, kinematics, tokens
from .features import COMMON_SOURCES, model_input_columns, window_features

CLASSES: tuple[str, ...] = ("G0", "G1", "G2", "G3", "none")


@dataclass
class Timeline:
    """One program laid out in program-time bins.

    ``lines`` ``(S,)`` line numbers, ``texts`` their G-code, ``modes`` their motion class
    (:data:`CLASSES`), ``seconds`` ``(S,)`` kinematic durations; ``bin_line`` ``(B,)`` index
    (into ``lines``) of the line owning each bin. Lines shorter than half a bin own none.
    """

    program: str
    lines: list[int]
    texts: list[str]
    modes: list[str]
    seconds: list[float]
    bin_line: list[int]

    @property
    def n_bins(self) -> int:
        return len(self.bin_line)


DURATIONS: tuple[str, ...] = ("kinematic", "observed", "template")
#: Emission features of the sensor classifier (:func:`features`): trailing-window statistics
#: (:func:`physml.cnc.features.window_features`) or centred multi-scale motion features
#: (:func:`physml.cnc.motion.motion_features`, half windows ``motion_halves``).
EMISSION_FEATURES: tuple[str, ...] = ("window", "motion")
#: Parameters of :class:`AlignmentConfig` that change the fit (the classifier's features), not
#: only the decoding, and that :func:`select_decoding` can still choose on inner folds: one fit
#: per inner fold and candidate value, every decoding combination re-decoded on it.
FIT_CHOICES: tuple[str, ...] = ("emission_features",)
#: The decoding parameters of :class:`AlignmentConfig`: they change the Viterbi search, not the
#: fitted timelines or classifier, so they are chosen on inner validation files
#: (:func:`select_decoding`) without refitting.
DECODING: tuple[str, ...] = ("weight", "pace_sigma", "max_advance", "start_rows", "end_rows",
                             "max_runs", "decoder")
#: How :meth:`AlignmentModel.align` reads the lines off the chosen program's timeline:
#: ``"viterbi"``, the single best path (:func:`physml.cnc.alignment.viterbi_time_warp`), or
#: ``"posterior"``, each row's most probable line by forward-backward
#: (:func:`physml.cnc.alignment.posterior_time_warp`), which maximises the expected number of
#: rows named right. The program is chosen by the best path's score either way.
DECODERS: tuple[str, ...] = ("viterbi", "posterior")


def restart_row(lines: np.ndarray) -> int:
    """Rows before the program's (re)start: every recording opens with a few status rows
    of stale line numbers (e.g. 20, 50, 81, 109, then 16, the first motion line). The run
    starts after the first backward jump of the line number within the first ``n/10`` rows;
    0 when there is none."""
    lines = np.asarray(lines)
    head = max(2, len(lines) // 10)
    back = np.flatnonzero(np.diff(lines[:head]) < 0)
    return int(back[0] + 1) if len(back) else 0


def modal_run(runs: Sequence[np.ndarray]) -> np.ndarray:
    """Row-wise modal line of several runs of one program: entry ``i`` is the line most runs
    report at their row ``i`` (among the runs longer than ``i``; a tie goes to the smaller line
    number); as long as the median run, rounded down. ``runs``: 1-D int arrays of line numbers.
    Shape ``(n,)`` int64.

    >>> modal_run([np.array([1, 1, 2, 3]), np.array([1, 2, 2, 3]), np.array([1, 2, 3])])
    array([1, 2, 2, 3])
    """
    if not runs:
        raise ValueError("modal_run: no runs")
    n = int(np.median([len(r) for r in runs]))
    vals = np.unique(np.concatenate([np.asarray(r[:n]) for r in runs]))
    counts = np.zeros((n, len(vals)), dtype=np.int64)
    for r in runs:
        r = np.asarray(r[:n])
        np.add.at(counts, (np.arange(len(r)), np.searchsorted(vals, r)), 1)
    return vals[np.argmax(counts, axis=1)].astype(np.int64)


def build_timeline(program: tokens.Program, train_rows: pd.DataFrame, *, rapid_rate: float,
                   machine_move_s: float, rows_per_second: float, bins_per_row: int,
                   time_scale: float = 1.0, durations: str = "kinematic") -> Timeline:
    """Timeline of ``program``; ``train_rows`` are the training rows of its files.

    ``durations="kinematic"``: each line lasts its kinematic duration (path length / feed)
    times ``rows_per_second`` (Hz) times ``time_scale`` (observed/kinematic ratio, 1 = the
    kinematic clock); the training rows only recover unreported feeds/modes.
    ``"observed"``: each line lasts the mean number of rows the program's typical training
    recordings (run length within 25% of the median) spent on it (0 for a line none
    reported); the kinematic model still gives the motion classes.
    ``"template"``: each line lasts the rows it holds in the typical recordings' *modal* run
    (row ``i`` of the run: the line most of them reported at row ``i``, over those at least
    ``i + 1`` rows long; ties to the earlier line), so a line reported by fewer than about half
    of them (lines shorter than a status row are reported by some recordings only, depending on
    the sampling phase) gets no rows and its neighbours keep theirs.
    Both open with the stale-status rows before the run (:func:`restart_row`): one row each,
    the training recordings' most frequent line at that position, median count.
    """
    if bins_per_row < 1:
        raise ValueError(f"bins_per_row must be >= 1, got {bins_per_row}")
    if durations not in DURATIONS:
        raise ValueError(f"durations must be one of {DURATIONS}, got {durations!r}")
    m = kinematics.line_motions(program.ordered(), rapid_rate=rapid_rate,
                                feeds=kinematics.feeds_from_reports(train_rows),
                                modes=tokens.reported_modes(train_rows),
                                machine_move_s=machine_move_s)
    mode_of = dict(zip(m["line"].astype(int), m["mode"], strict=True))
    text_of = dict(zip(m["line"].astype(int), m["text"], strict=True))
    heads, runs = [], []
    for _, g in train_rows.groupby("file", sort=False):
        ln = g["gcode_line"].to_numpy()
        k = restart_row(ln)
        heads.append(ln[:k])
        runs.append(ln[k:])
    n_head = int(np.median([len(h) for h in heads])) if heads else 0
    head_lines = []
    for i in range(n_head):
        vals = [int(h[i]) for h in heads if len(h) > i]
        head_lines.append(max(set(vals), key=lambda v: (vals.count(v), -v)))
    if durations == "kinematic":
        rows = kinematics.expected_rows(m["seconds"].to_numpy(), rows_per_second) * time_scale
    else:
        # mean over the program's typical recordings (run length within 25% of the median
        # run: a recording that ran the program twice would double every line) of the rows
        # each spent on the line; the mean keeps the run's total length, a median would not
        lengths = np.array([len(r) for r in runs])
        typical = [r for r in runs if abs(len(r) - np.median(lengths)) <= 0.25 * np.median(lengths)]
        if durations == "observed":
            counts = pd.Series(np.concatenate(typical), dtype=float).value_counts()
            rows = m["line"].map(counts).fillna(0.0).to_numpy() / len(typical)
        else:
            counts = pd.Series(modal_run(typical), dtype=float).value_counts()
            rows = m["line"].map(counts).fillna(0.0).to_numpy()
    lines = head_lines + m["line"].astype(int).tolist()
    rows = np.r_[np.ones(n_head), rows]
    ends = np.cumsum(rows * bins_per_row)
    n_bins = max(1, int(round(ends[-1])))
    bin_line = np.searchsorted(ends, np.arange(n_bins) + 0.5, side="right")
    bin_line = np.minimum(bin_line, len(ends) - 1)
    seconds = [0.0] * n_head + m["seconds"].astype(float).tolist()
    return Timeline(program.name, lines, [text_of[x] for x in lines],
                    [mode_of[x] for x in lines], seconds, bin_line.astype(int).tolist())


def row_modes(rows: pd.DataFrame, timelines: dict[str, Timeline],
              program_of: dict[str, str]) -> np.ndarray:
    """Motion class of each row: the timeline mode of its reported line (training labels).
    Shape ``(n_rows,)`` object. Raises ``KeyError`` naming a line absent from its program."""
    lut = pd.DataFrame([(p, ln, m) for p, t in timelines.items()
                        for ln, m in zip(t.lines, t.modes, strict=True)],
                       columns=["program", "gcode_line", "mode"]).drop_duplicates(
                           ["program", "gcode_line"])
    q = pd.DataFrame({"file": rows["file"].to_numpy(),
                      "program": rows["file"].map(program_of).to_numpy(),
                      "gcode_line": rows["gcode_line"].to_numpy(dtype=np.int64)})
    j = q.merge(lut, on=["program", "gcode_line"], how="left")
    bad = j["mode"].isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise KeyError(f"file {q['file'][i]}: line {q['gcode_line'][i]} is not in program "
                       f"{q['program'][i]}")
    return j["mode"].to_numpy(dtype=object)


def fit_time_scale(rows: pd.DataFrame, timelines: dict[str, Timeline],
                   program_of: dict[str, str], rows_per_second: float) -> float:
    """Observed rows / kinematic rows, pooled over the training files (one number)."""
    n = {f: len(g) - restart_row(g["gcode_line"].to_numpy())
         for f, g in rows.groupby("file", sort=False)}
    kin = sum(sum(timelines[program_of[f]].seconds) * rows_per_second for f in n)
    if kin <= 0:
        raise ValueError("fit_time_scale: the programs have no kinematic duration")
    return float(sum(n.values()) / kin)


@dataclass
class AlignmentConfig:
    """Everything the hybrid needs besides data (all from the notebook's params)."""

    window: int = 3
    per_file: str = "standardise"
    sources: tuple[str, ...] = COMMON_SOURCES
    rapid_rate: float = 50.0
    machine_move_s: float = 2.0
    rows_per_second: float = 3.891
    bins_per_row: int = 2
    max_advance: int = 6
    pace_sigma: float = 1.0
    start_rows: float = 12.0
    end_rows: float = 12.0
    weight: float = 1.0
    max_runs: int = 1
    decoder: str = "viterbi"
    durations: str = "kinematic"
    emission_features: str = "window"
    motion_halves: tuple[int, ...] = (2, 8, 24)
    gbm_iter: int = 30
    train_stride: int = 4
    seed: int = 0
    threads: int = 1  # programs decoded at once (threads; the Viterbi kernel releases the GIL)

    def __post_init__(self):
        self.sources = tuple(self.sources)
        self.motion_halves = tuple(int(h) for h in self.motion_halves)
        if self.decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, got {self.decoder!r}")
        if self.emission_features not in EMISSION_FEATURES:
            raise ValueError(f"emission_features must be one of {EMISSION_FEATURES}, got "
                             f"{self.emission_features!r}")
        if not self.motion_halves or min(self.motion_halves) < 0:
            raise ValueError(f"motion_halves must be half windows >= 0 rows, got "
                             f"{self.motion_halves}")
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        if self.max_runs < 1:
            raise ValueError(f"max_runs must be >= 1, got {self.max_runs}")


@dataclass
class AlignmentModel:
    """A fitted hybrid: timelines of the known programs + the emission classifier."""

    config: AlignmentConfig
    timelines: dict[str, Timeline]
    classifier: object | None
    class_log_prior: dict[str, float]
    feature_columns: list[str]
    time_scale: float
    info: dict = field(default_factory=dict)

    # ------------------------------------------------------------ fitting
    @classmethod
    def fit(cls, rows: pd.DataFrame, config: AlignmentConfig,
            X: np.ndarray | None = None) -> AlignmentModel:
        """Fit on training ``rows`` (a :class:`~physml.cnc.data.CNCData` ``rows`` frame with
        targets and the kept controller fields). ``X``: their window features if already
        computed (:func:`features` with the same config), else computed here."""
        programs = tokens.recover_programs(rows)
        prog_of = tokens.program_of_file(programs)
        # the few columns the timelines read (a copy of every sensor column per program
        # was most of the fitting time)
        slim = rows[["file", "gcode_line", "feed", "momo"]]
        by_prog = slim["file"].map(prog_of).to_numpy()
        per_prog = {p.name: slim[by_prog == p.name] for p in programs}
        kw = dict(rapid_rate=config.rapid_rate, machine_move_s=config.machine_move_s,
                  rows_per_second=config.rows_per_second, bins_per_row=config.bins_per_row,
                  durations=config.durations)
        raw = {p.name: build_timeline(p, per_prog[p.name], **kw) for p in programs}
        scale = fit_time_scale(slim, raw, prog_of, config.rows_per_second)
        timelines = raw
        if config.durations == "kinematic":  # observed durations need no time scale
            timelines = {p.name: build_timeline(p, per_prog[p.name], time_scale=scale, **kw)
                         for p in programs}
        cols = model_input_columns(config.sources)
        y = row_modes(rows, timelines, prog_of) if config.weight != 0 else None
        if X is None and config.weight != 0:
            X = features(rows, config)
        tr = np.arange(0, len(rows), config.train_stride)
        freq = pd.Series(y[tr] if y is not None else [], dtype=object).value_counts(
            normalize=True)
        prior = {c: float(np.log(freq[c])) if c in freq.index else float("-inf")
                 for c in CLASSES}
        clf = None
        if config.weight != 0:
            from .baselines import fit_classifier

            clf = fit_classifier("gbm", X[tr], y[tr], config.seed, config.gbm_iter,
                                 balanced=False)
        return cls(config, timelines, clf, prior, cols, scale,
                   {"programs": {p.name: list(p.files) for p in programs}})

    # ------------------------------------------------------------ decoding
    def log_ratio(self, X: np.ndarray) -> np.ndarray:
        """``(T, len(CLASSES))`` unweighted ``log p(c|x) - log p(c)`` of the emission
        classifier (``nan`` for a class it never saw); zeros without a sensor part."""
        out = np.zeros((len(X), len(CLASSES)))
        if self.classifier is None:
            return out
        proba = self.classifier.predict_proba(X)
        known = [str(c) for c in self.classifier.classes_]
        for j, c in enumerate(CLASSES):
            if c in known:
                p = np.clip(proba[:, known.index(c)], 1e-6, 1.0)
                out[:, j] = np.log(p) - self.class_log_prior[c]
            else:
                out[:, j] = np.nan
        return out

    def class_log_scores(self, X: np.ndarray | None = None, *,
                         ratio: np.ndarray | None = None) -> np.ndarray:
        """``(T, len(CLASSES))`` scaled log-likelihoods ``weight * (log p(c|x) - log p(c))``
        of the window features ``X`` (or of a precomputed :meth:`log_ratio` ``ratio``); a
        class the classifier never saw scores ``-inf``; zeros when ``weight = 0``."""
        r = self.log_ratio(X) if ratio is None else np.asarray(ratio, dtype=float)
        if self.classifier is None or self.config.weight == 0:
            return np.zeros_like(r)
        return np.where(np.isnan(r), -np.inf, self.config.weight * r)

    def with_decoding(self, **params) -> AlignmentModel:
        """The same fitted model with other decoding parameters (:data:`DECODING`:
        ``weight``, ``pace_sigma``, ``max_advance``, ``start_rows``, ``end_rows``); nothing
        is refitted. Raises ``ValueError`` naming a parameter that is not a decoding one."""
        bad = sorted(set(params) - set(DECODING))
        if bad:
            raise ValueError(f"with_decoding: {bad} are not decoding parameters {DECODING}")
        if params.get("weight", 0) < 0:
            raise ValueError(f"weight must be >= 0, got {params['weight']}")
        if params.get("weight", 0) > 0 and self.classifier is None:
            raise ValueError("with_decoding: weight > 0 needs a model fitted with a sensor "
                             "classifier (config.weight != 0)")
        return replace(self, config=replace(self.config, **params))

    def align(self, X: np.ndarray | None = None, *, ratio: np.ndarray | None = None) -> dict:
        """Align one recording (its window features ``X``, ``(T, F)``, or their
        :meth:`log_ratio` ``ratio``, ``(T, len(CLASSES))``) to every program.

        Returns ``{"program", "scores" {program: log-score}, "lines" (T,) line numbers,
        "texts" (T,) G-code, "modes" (T,) motion class}`` for the best program.
        """
        L = self.class_log_scores(X, ratio=ratio)
        cfg = self.config
        adv = alignment.advance_log_probs(cfg.bins_per_row, cfg.max_advance, cfg.pace_sigma)

        def problem(tl: Timeline) -> tuple[np.ndarray, np.ndarray, int, int]:
            cls_idx = np.array([CLASSES.index(m) for m in tl.modes])
            bins = self.bin_lines(tl, len(L))
            e = L[:, cls_idx[bins]]
            start = max(1, min(len(bins), int(round(cfg.start_rows * cfg.bins_per_row))))
            end = max(1, min(len(bins), int(round(cfg.end_rows * cfg.bins_per_row))))
            return bins, e, start, end

        def decode(tl: Timeline) -> tuple[np.ndarray, float]:
            _, e, start, end = problem(tl)
            return alignment.viterbi_time_warp(e, adv, start, end)

        names = list(self.timelines)
        if cfg.threads > 1 and len(names) > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=cfg.threads) as ex:
                done = list(ex.map(lambda n: decode(self.timelines[n]), names))
        else:
            done = [decode(self.timelines[n]) for n in names]
        scores = {n: r[1] for n, r in zip(names, done, strict=True)}
        best = None
        for n, (path, score) in zip(names, done, strict=True):
            if best is None or score > best[1]:  # first program wins a tie, as before
                best = (n, score, path)
        name, _, path = best
        tl = self.timelines[name]
        if cfg.decoder == "posterior":
            bins, e, start, end = problem(tl)
            li, _ = alignment.posterior_time_warp(e, adv, start, end, bins, len(tl.lines))
        else:
            li = self.bin_lines(tl, len(L))[path]
        return {"program": name, "scores": scores,
                "lines": np.asarray(tl.lines)[li], "texts": np.asarray(tl.texts, dtype=object)[li],
                "modes": np.asarray(tl.modes, dtype=object)[li]}

    def runs(self, tl: Timeline, n_rows: int) -> int:
        """How many times in a row a recording of ``n_rows`` rows runs the program of ``tl``:
        its length over the program's (``tl.n_bins / bins_per_row`` rows), rounded, between 1
        and ``config.max_runs`` (some recordings restart their program once it ends). The
        length is a property of the sensor stream: no target is read."""
        r = int(round(n_rows * self.config.bins_per_row / max(1, tl.n_bins)))
        return int(np.clip(r, 1, self.config.max_runs))

    def bin_lines(self, tl: Timeline, n_rows: int) -> np.ndarray:
        """Line index of each program-time bin for a recording of ``n_rows`` rows:
        ``tl.bin_line`` repeated :meth:`runs` times (the stale-status head included, as a
        restarted run reports it again). Shape ``(runs * B,)`` int."""
        return np.tile(np.asarray(tl.bin_line), self.runs(tl, n_rows))

    def predict_rows(self, rows: pd.DataFrame, X: np.ndarray | None = None) -> pd.DataFrame:
        """Per-row predictions for every file in ``rows`` (sensor columns and ``file``
        only are read): ``file row program line text command``."""
        if X is None:
            X = (features(rows, self.config) if self.classifier is not None
                 else np.zeros((len(rows), 0), dtype=np.float32))
        out = []
        files = rows["file"].to_numpy()
        for f in pd.unique(files):
            idx = np.flatnonzero(files == f)
            a = self.align(X[idx])
            out.append(pd.DataFrame({"file": f, "row": rows["row"].to_numpy()[idx],
                                     "program": a["program"], "line": a["texts"],
                                     "line_number": a["lines"], "command": a["modes"]}))
        return pd.concat(out, ignore_index=True)

    # ------------------------------------------------------------ persistence
    def save(self, model_dir: str | Path) -> Path:
        """Write ``manifest.json`` (``kind: alignment``), ``timelines.json`` and
        ``classifier.joblib`` into ``model_dir``."""
        import joblib

        d = Path(model_dir)
        d.mkdir(parents=True, exist_ok=True)
        if self.classifier is not None:
            joblib.dump(self.classifier, d / "classifier.joblib")
        (d / "timelines.json").write_text(json.dumps(
            {k: asdict(v) for k, v in self.timelines.items()}))
        manifest = {"kind": "alignment", "config": asdict(self.config),
                    "feature_columns": self.feature_columns, "time_scale": self.time_scale,
                    "class_log_prior": {k: (v if np.isfinite(v) else None)
                                        for k, v in self.class_log_prior.items()},
                    "classes": list(CLASSES), "has_classifier": self.classifier is not None,
                    "info": self.info}
        (d / "manifest.json").write_text(json.dumps(manifest, indent=2))
        return d

    @classmethod
    def load(cls, model_dir: str | Path) -> AlignmentModel:
        """Inverse of :meth:`save`; raises ``ValueError`` naming a wrong manifest kind."""
        import joblib

        d = Path(model_dir)
        man = json.loads((d / "manifest.json").read_text())
        if man.get("kind") != "alignment":
            raise ValueError(f"{d / 'manifest.json'}: kind {man.get('kind')!r} is not "
                             "'alignment'")
        missing = sorted({f.name for f in fields(AlignmentConfig)} - set(man["config"]))
        if missing:
            raise ValueError(f"{d / 'manifest.json'}: config lacks {missing} (saved before "
                             "these options existed); re-save the model (notebook 05)")
        cfg = AlignmentConfig(**man["config"])
        tl = {k: Timeline(**v) for k, v in json.loads((d / "timelines.json").read_text()).items()}
        clf = joblib.load(d / "classifier.joblib") if man["has_classifier"] else None
        prior = {k: (float("-inf") if v is None else float(v))
                 for k, v in man["class_log_prior"].items()}
        return cls(cfg, tl, clf, prior, list(man["feature_columns"]), float(man["time_scale"]),
                   man.get("info", {}))


def features(rows: pd.DataFrame, config: AlignmentConfig) -> np.ndarray:
    """The emission classifier's features of the allowed channels, ``(n_rows, n_features)``:
    ``config.emission_features == "window"``: trailing-window statistics over
    ``config.window`` rows; ``"motion"``: centred motion features over the half windows
    ``config.motion_halves`` (rows) (:func:`physml.cnc.motion.motion_features`; decoding is
    offline over a whole recording, so rows after the labelled one are available)."""
    cols = model_input_columns(config.sources)
    if config.emission_features == "motion":
        from .motion import motion_features

        X, _ = motion_features(rows, cols, halves=config.motion_halves,
                               per_file=config.per_file)
        return X
    X, _ = window_features(rows, cols, config.window, per_file=config.per_file)
    return X


# ---------------------------------------------------------------- experiments (notebook 05)

def decoding_grid(grid: dict[str, Sequence] | None) -> list[dict]:
    """Every combination of the ``grid`` values, ``{parameter: [values]}`` over
    :data:`DECODING` and :data:`FIT_CHOICES` parameters, in order (the first parameter varies
    slowest); ``[{}]`` for an empty grid. Raises ``ValueError`` naming an unknown parameter or
    an empty value list.

    >>> decoding_grid({"weight": [0.1, 0.2], "pace_sigma": [0.4]})
    [{'weight': 0.1, 'pace_sigma': 0.4}, {'weight': 0.2, 'pace_sigma': 0.4}]
    """
    import itertools

    grid = dict(grid or {})
    bad = sorted(set(grid) - set(DECODING) - set(FIT_CHOICES))
    if bad:
        raise ValueError(f"decoding grid: {bad} are not decoding parameters {DECODING} or "
                         f"fit choices {FIT_CHOICES}")
    for k, v in grid.items():
        if len(list(v)) == 0:
            raise ValueError(f"decoding grid: {k!r} has no values")
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*grid.values())]


def best_decoding(table: pd.DataFrame, keys: Sequence[str]) -> tuple[dict, float]:
    """The combination of ``keys`` with the highest mean ``line_exact_accuracy`` over the
    inner folds of ``table`` (one row per inner fold x combination, as :func:`select_decoding`
    writes it), and that mean. Ties go to the combination listed first."""
    if table.empty:
        raise ValueError("best_decoding: empty table")
    keys = list(keys)
    if not keys:
        return {}, float(table["line_exact_accuracy"].mean())
    mean = table.groupby(keys, sort=False)["line_exact_accuracy"].mean()
    i = int(np.argmax(mean.to_numpy()))  # first of the best in table order
    combo = mean.index[i] if len(keys) > 1 else (mean.index[i],)
    return ({k: (v.item() if hasattr(v, "item") else v) for k, v in zip(keys, combo, strict=True)},
            float(mean.iloc[i]))


def features_for(X: np.ndarray | dict, config: AlignmentConfig) -> np.ndarray:
    """The feature matrix of ``config.emission_features``: ``X`` itself when it is one array,
    ``X[config.emission_features]`` when it is a dict ``{emission_features: (n, F) array}``.
    Raises ``KeyError`` naming the missing kind."""
    if not isinstance(X, dict):
        return X
    if config.emission_features not in X:
        raise KeyError(f"emission features {config.emission_features!r} were not computed; "
                       f"have {sorted(X)}")
    return X[config.emission_features]


def select_decoding(train_rows: pd.DataFrame, X_train: np.ndarray | dict,
                    config: AlignmentConfig, grid: dict[str, Sequence] | None, n_inner: int,
                    seed: int) -> tuple[AlignmentConfig, pd.DataFrame]:
    """Choose the decoding parameters of ``config`` on validation files INSIDE the training
    rows: grouped inner K-fold over ``train_rows["file"]`` (:func:`physml.splits.group_kfold`),
    one fit per inner fold (and per value of the :data:`FIT_CHOICES` in ``grid``, e.g.
    ``emission_features``), every :func:`decoding_grid` combination decoded on its validation
    files, the best mean exact-line accuracy wins (:func:`best_decoding`).

    It is given the training rows only (``train_rows``; ``X_train`` ``(n, F)`` their emission
    features, or a dict ``{emission_features: (n, F)}`` when ``grid`` chooses between kinds):
    the outer fold's test files never reach it. Returns the chosen config and the inner table
    (``inner_fold``, the grid parameters, ``line_exact_accuracy``, ``rows``).
    """
    from physml import splits as _splits

    combos = decoding_grid(grid)
    keys = list(combos[0])
    fit_keys = [k for k in keys if k in FIT_CHOICES]
    for kind in ({c["emission_features"] for c in combos} if "emission_features" in fit_keys
                 else {config.emission_features}):
        Xk = features_for(X_train, replace(config, emission_features=kind))
        if len(Xk) != len(train_rows):
            raise ValueError(f"select_decoding: X_train ({kind}) has {len(Xk)} rows, "
                             f"train_rows {len(train_rows)}")
    sensor = config.weight != 0 or any(c.get("weight", 0) != 0 for c in combos)
    fit_cfg = replace(config, weight=1.0) if sensor else config
    fit_combos = list(dict.fromkeys(tuple((k, c[k]) for k in fit_keys) for c in combos))
    files = train_rows["file"].to_numpy()
    recs = []
    for sp in _splits.group_kfold(files, n_inner, seed=seed, what="file"):
        tr = train_rows.iloc[sp.train].reset_index(drop=True)
        val_files = files[sp.test]
        truth = train_rows["gcode_string"].to_numpy()[sp.test]
        blocks = [np.flatnonzero(val_files == f) for f in pd.unique(val_files)]
        for fc in fit_combos:
            cfg_f = replace(fit_cfg, **dict(fc))
            Xk = features_for(X_train, cfg_f)
            model = AlignmentModel.fit(tr, cfg_f, X=Xk[sp.train])
            ratio = model.log_ratio(Xk[sp.test])
            for combo in combos:
                if any(combo[k] != v for k, v in fc):
                    continue
                dec = {k: v for k, v in combo.items() if k in DECODING}
                m = model.with_decoding(**{**{k: getattr(config, k) for k in DECODING}, **dec})
                hits = 0
                for idx in blocks:
                    hits += int(np.sum(m.align(ratio=ratio[idx])["texts"] == truth[idx]))
                recs.append({"inner_fold": sp.fold, **combo,
                             "line_exact_accuracy": hits / len(truth), "rows": len(truth)})
    table = pd.DataFrame(recs)
    if keys:  # combos in grid order (ties go to the first listed), inner folds within
        order = {tuple(c.values()): i for i, c in enumerate(combos)}
        rank = [order[tuple(r)] for r in table[keys].itertuples(index=False)]
        table = table.iloc[np.lexsort((table["inner_fold"].to_numpy(), rank))]
        table = table.reset_index(drop=True)
    chosen, _ = best_decoding(table, keys)
    return replace(config, **chosen), table


def run_folds(data, split_list, configs: dict[str, AlignmentConfig],
              X: np.ndarray | dict | None = None, grids: dict[str, dict] | None = None,
              n_inner: int = 3, predictions: list | None = None
              ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Fit and score each named config on every ``(seed, Split)`` of ``split_list``
    (row indices into ``data.rows``). ``X``: the emission features of every row, one array or
    ``{emission_features: array}`` (:func:`features_for`); ``None`` computes them.

    ``grids``: ``{name: {decoding parameter: [values]}}``; a config with a grid has those
    parameters chosen per outer fold by :func:`select_decoding` on ``n_inner`` inner folds of
    the fold's TRAINING files only. Returns per-fold scores (``method seed fold
    token_accuracy line_exact_accuracy ... program_accuracy``), per-file program choices, and
    the chosen decoding parameters per fold (``method seed fold <parameters>
    inner_line_exact_accuracy``). ``predictions``: a list to which every test row's
    prediction is appended, one frame per (fold, method), for :func:`error_breakdown`
    (``method seed fold file position true_program program_ok true_line pred_line
    true_text pred_text true_mode pred_mode``)."""
    from .baselines import score_lines

    rows = data.rows
    grids = grids or {}
    true_prog = tokens.program_of_file(tokens.recover_programs(rows))
    recs, picks, chosen = [], [], []
    if X is None:
        X = {}
        for name, cfg in configs.items():
            for kind in {cfg.emission_features, *grids.get(name, {}).get("emission_features", [])}:
                if kind not in X:
                    X[kind] = features(rows, replace(cfg, emission_features=kind))
    Xall = X
    for seed, sp in split_list:
        tr = rows.iloc[sp.train].reset_index(drop=True)
        te = rows.iloc[sp.test].reset_index(drop=True)
        for name, cfg in configs.items():
            if grids.get(name):
                cfg, table = select_decoding(tr, _rows_of(Xall, sp.train), cfg, grids[name],
                                             n_inner, seed)
                keys = list(grids[name])
                _, inner = best_decoding(table, keys)
                chosen.append({"method": name, "seed": seed, "fold": sp.fold,
                               **{k: getattr(cfg, k) for k in ["weight", *keys]},
                               "inner_line_exact_accuracy": inner})
            Xc = features_for(Xall, cfg)
            model = AlignmentModel.fit(tr, cfg, X=Xc[sp.train])
            pred = model.predict_rows(te, X=Xc[sp.test])
            s = score_lines(pred["line"].tolist(), te["gcode_string"].tolist())
            # program named right: the predicted program holds the test file's true line texts
            fp = pred.groupby("file")["program"].first()
            members = model.info["programs"]
            ok = {f: any(true_prog[g] == true_prog[f] for g in members[fp[f]])
                  for f in fp.index}
            recs.append({"method": name, "seed": seed, "fold": sp.fold, **s,
                         "program_accuracy": float(np.mean(list(ok.values())))})
            if predictions is not None:
                predictions.append(_prediction_frame(name, seed, sp.fold, te, pred, model,
                                                     true_prog, ok))
            picks += [{"method": name, "seed": seed, "file": f, "program_ok": ok[f]} for f in ok]
    return pd.DataFrame(recs), pd.DataFrame(picks), pd.DataFrame(chosen)


def _rows_of(X: np.ndarray | dict, idx: np.ndarray) -> np.ndarray | dict:
    """Rows ``idx`` of one feature array or of every array of a dict of them."""
    return {k: v[idx] for k, v in X.items()} if isinstance(X, dict) else X[idx]


def _prediction_frame(method: str, seed: int, fold: int, te: pd.DataFrame, pred: pd.DataFrame,
                      model: AlignmentModel, true_prog: dict[str, str],
                      program_ok: dict[str, bool]) -> pd.DataFrame:
    """One row per test row: what :func:`error_breakdown` needs (see :func:`run_folds`)."""
    files = te["file"].to_numpy()
    n = pd.Series(files).map(pd.Series(files).value_counts()).to_numpy()
    pos = pd.Series(files).groupby(files).cumcount().to_numpy() / n
    mode_of = {(p, ln): m for p, tl in model.timelines.items()
               for ln, m in zip(tl.lines, tl.modes, strict=True)}
    progs = pred["program"].to_numpy()
    true_line = te["gcode_line"].to_numpy(dtype=np.int64)
    return pd.DataFrame({
        "method": method, "seed": seed, "fold": fold, "file": files, "position": pos,
        "true_program": [true_prog[f] for f in files],
        "program_ok": [program_ok[f] for f in files],
        "true_line": true_line, "pred_line": pred["line_number"].to_numpy(dtype=np.int64),
        "true_text": te["gcode_string"].to_numpy(), "pred_text": pred["line"].to_numpy(),
        # the true line's motion class in the predicted program (None when it has no such
        # line: then the program is wrong)
        "true_mode": [mode_of.get((p, int(ln))) for p, ln in zip(progs, true_line, strict=True)],
        "pred_mode": pred["command"].to_numpy()})


#: error kinds of :func:`error_breakdown`, in table order
ERROR_KINDS: tuple[str, ...] = ("correct", "wrong program", "line off by 1",
                                "line off by 2-4", "line off by 5 or more")


def error_kind(frame: pd.DataFrame) -> np.ndarray:
    """Each predicted row's :data:`ERROR_KINDS` entry: ``correct`` (the line text is right),
    ``wrong program`` (the recording was aligned to a program other than its own), else by
    the distance between the predicted and the true line number. Shape ``(n,)`` object."""
    ok = frame["true_text"].to_numpy() == frame["pred_text"].to_numpy()
    dist = np.abs(frame["pred_line"].to_numpy() - frame["true_line"].to_numpy())
    kind = np.where(dist <= 1, ERROR_KINDS[2],
                    np.where(dist <= 4, ERROR_KINDS[3], ERROR_KINDS[4])).astype(object)
    kind[~frame["program_ok"].to_numpy(dtype=bool)] = ERROR_KINDS[1]
    kind[ok] = ERROR_KINDS[0]
    return kind


def command_scores(predictions: Sequence[pd.DataFrame], labels: np.ndarray,
                   split_list) -> pd.DataFrame:
    """Task (a) read off the alignment: for each prediction frame of :func:`run_folds` (one per
    method x fold, rows in the order of that fold's test rows), the balanced accuracy of
    ``pred_mode`` (the motion class of the aligned line) against ``labels``, the command class
    of every row of the data (``Prepared.labels["command"]``, the labels notebook 03 scores);
    rows of class ``"none"`` are left out, as in :func:`physml.cnc.baselines.command_scores`.
    Returns ``method seed fold command_balanced_accuracy``. Raises ``ValueError`` naming the
    frame whose length differs from its fold's test rows, or a fold not in ``split_list``."""
    from .baselines import balanced_accuracy_score

    test_of = {(int(seed), int(sp.fold)): np.asarray(sp.test) for seed, sp in split_list}
    labels = np.asarray(labels, dtype=object)
    out = []
    for p in predictions:
        m, seed, fold = p["method"].iloc[0], int(p["seed"].iloc[0]), int(p["fold"].iloc[0])
        if (seed, fold) not in test_of:
            raise ValueError(f"command_scores: {m!r} seed {seed} fold {fold} is not in the splits")
        y = labels[test_of[(seed, fold)]]
        if len(y) != len(p):
            raise ValueError(f"command_scores: {m!r} seed {seed} fold {fold} has {len(p)} "
                             f"predicted rows, the fold {len(y)} test rows")
        keep = y != "none"
        out.append({"method": m, "seed": seed, "fold": fold,
                    "command_balanced_accuracy": balanced_accuracy_score(
                        y[keep], p["pred_mode"].to_numpy(dtype=object)[keep])})
    return pd.DataFrame(out)


#: Notebook 04's report, and the per-fold figures of its neural models that
#: :func:`against_neural` pairs with: ``{model: (figure name, metric)}``.
NEURAL_REPORT = "cnc/04_encoder_decoder"
NEURAL_FIGURES = {"encoder_decoder": ("line_exact_accuracy_by_fold.encoder_decoder",
                                     "line_exact_accuracy"),
                  "cnn": ("command_balanced_accuracy_by_fold.cnn", "command_balanced_accuracy")}


def against_neural(scores: pd.DataFrame, split_list, method: str, margin: float,
                   report: str = NEURAL_REPORT) -> dict[str, dict]:
    """``method`` against notebook 04's neural models on the same folds, paired fold by fold:
    its exact line against the encoder-decoder's, its command class against the 1-D CNN's
    (:data:`NEURAL_FIGURES`; notebook 04 records them per fold under
    :func:`physml.splits.fold_key`, so a fold pairs only with the same held-out files).

    ``scores``: one row per method x fold with ``method seed fold`` and both metrics (the
    line scores of :func:`run_folds` merged with :func:`command_scores`). Returns ``{model:
    {"metric", "neural" (stats.CI over the folds), "ours" (stats.CI), "verdict"
    (stats.compare, ``method`` minus the model, higher is better), "at_least" (the issue's
    "at least as good": ``method`` better, or equivalent within ``margin`` by TOST)}}``.
    Raises ``LookupError`` (:func:`physml.results.fold_figures`) saying why notebook 04's
    report cannot be paired: missing, failed, stale, or on other folds."""
    from physml import results, splits, stats

    keys = [splits.fold_key(seed, sp) for seed, sp in split_list]
    mine = scores[scores["method"] == method]
    out = {}
    for model, (name, metric) in NEURAL_FIGURES.items():
        theirs = results.fold_figures(report, name, keys)
        ours = splits.fold_values(mine, split_list, metric)
        a = np.array([ours[k] for k in keys])
        b = np.array([theirs[k] for k in keys])
        out[model] = {"metric": metric,
                      "neural": stats.mean_ci(b, bounds=stats.UNIT_INTERVAL),
                      "ours": stats.mean_ci(a, bounds=stats.UNIT_INTERVAL),
                      "verdict": stats.compare(a, b, better="higher", margin=margin)}
        out[model]["at_least"] = out[model]["verdict"].outcome in ("a", "tie")
    return out


def error_breakdown(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Where the alignment's exact-line errors are, from :func:`run_folds`' ``predictions``
    (one method). Shares are of all predicted rows, pooled over folds:

    - ``kinds``: share of rows per :func:`error_kind`;
    - ``by_program``: per true program, files, rows, exact-line accuracy, and the share of
      its rows in each error kind;
    - ``by_position``: exact-line accuracy per tenth of the recording (0 = first tenth);
    - ``same_mode``: among wrong lines of the right program, the share whose predicted line
      has the true line's motion class (the emission classifier cannot tell them apart: only
      the timing can), and the share that differs in class.
    """
    if frame.empty:
        raise ValueError("error_breakdown: no predictions")
    if frame["method"].nunique() != 1:
        raise ValueError(f"error_breakdown: one method at a time, got "
                         f"{sorted(frame['method'].unique())}")
    f = frame.assign(kind=error_kind(frame))
    f["correct"] = f["kind"] == ERROR_KINDS[0]
    kinds = (f["kind"].value_counts(normalize=True).reindex(list(ERROR_KINDS), fill_value=0.0)
             .rename("share of rows").to_frame())
    share = pd.crosstab(f["true_program"], f["kind"], normalize="index").reindex(
        columns=list(ERROR_KINDS), fill_value=0.0)
    by_prog = pd.concat([f.groupby("true_program").agg(files=("file", "nunique"),
                                                       rows=("file", "size"),
                                                       accuracy=("correct", "mean")),
                         share.drop(columns=ERROR_KINDS[0])], axis=1)
    by_prog = by_prog.astype({"files": int, "rows": int})
    tenth = np.minimum((f["position"].to_numpy() * 10).astype(int), 9)
    by_pos = f.groupby(tenth)["correct"].mean().rename("accuracy").to_frame()
    by_pos.index.name = "tenth of the recording"
    wrong_line = f[~f["correct"] & f["program_ok"].astype(bool)]
    same = (wrong_line["true_mode"] == wrong_line["pred_mode"]).to_numpy()
    same_mode = pd.DataFrame({"share of wrong lines": [float(same.mean()) if len(same) else
                                                       float("nan"),
                                                       float(1 - same.mean()) if len(same)
                                                       else float("nan")]},
                             index=["same motion class (timing error)",
                                    "other motion class"])
    return {"kinds": kinds, "by_program": by_prog, "by_position": by_pos,
            "same_mode": same_mode}


def modal_choice(chosen: pd.DataFrame, method: str, keys: Sequence[str]) -> dict:
    """The decoding parameters ``keys`` most often chosen for ``method`` over the outer folds
    of ``chosen`` (:func:`run_folds`' third frame); ties go to the first chosen. For the model
    fitted on all files, whose parameters no outer test fold can check."""
    c = chosen[chosen["method"] == method]
    if c.empty:
        raise ValueError(f"modal_choice: no choices for method {method!r}")
    keys = list(keys)
    counts = c.groupby(keys, sort=False).size()
    combo = counts.index[int(np.argmax(counts.to_numpy()))]
    combo = combo if len(keys) > 1 else (combo,)
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in zip(keys, combo, strict=True)}


def decoding_grids(configs: dict[str, AlignmentConfig], weights: Sequence[float],
                   pace_sigmas: Sequence[float], max_advances: Sequence[int],
                   emission_features: Sequence[str] = (),
                   decoders: Sequence[str] = ()) -> dict[str, dict]:
    """Candidate decoding parameters per named config: ``pace_sigma`` and ``max_advance`` (and
    ``decoder`` when more than one is given) for every config, plus ``weight`` (and
    ``emission_features`` when more than one kind is given) for those with a sensor part
    (``config.weight != 0``)."""
    bad = [k for k in decoders if k not in DECODERS]
    if bad:
        raise ValueError(f"decoding_grids: decoders {bad} not in {DECODERS}")
    timing = ({"decoder": list(decoders)} if len(decoders) > 1 else {}) | {
        "pace_sigma": list(pace_sigmas), "max_advance": list(max_advances)}
    kinds = list(emission_features)
    bad = [k for k in kinds if k not in EMISSION_FEATURES]
    if bad:
        raise ValueError(f"decoding_grids: emission features {bad} not in {EMISSION_FEATURES}")
    sensor = ({"emission_features": kinds} if len(kinds) > 1 else {}) | {"weight": list(weights)}
    return {name: ({**sensor, **timing} if cfg.weight else dict(timing))
            for name, cfg in configs.items()}


def chosen_figures(chosen: pd.DataFrame, grids: dict[str, dict]) -> dict[str, float]:
    """The chosen parameters of :func:`run_folds` as flat results keys
    ``"<method>.seed<s>.fold<f>.<parameter>"`` (for :func:`physml.results.record`); numbers
    as float, a chosen ``emission_features`` as its name."""
    return {f"{r['method']}.seed{r['seed']}.fold{r['fold']}.{k}":
            (r[k] if isinstance(r[k], str) else float(r[k]))
            for _, r in chosen.iterrows() for k in grids[r["method"]]}


def modal_config(config: AlignmentConfig, chosen: pd.DataFrame, method: str,
                 keys: Sequence[str]) -> AlignmentConfig:
    """``config`` with the decoding parameters ``keys`` set to :func:`modal_choice`."""
    return replace(config, **modal_choice(chosen, method, keys))


def knn_lines(Xtr: np.ndarray, ytr: np.ndarray, Xte: np.ndarray, k: int) -> np.ndarray:
    """k-nearest-neighbour majority line (standardised features, training scaler)."""
    from sklearn.neighbors import KNeighborsClassifier
    from threadpoolctl import threadpool_limits

    from .baselines import _standardise

    Xtr, Xte = _standardise(Xtr, Xte)
    with threadpool_limits(limits=1):
        return KNeighborsClassifier(n_neighbors=k, algorithm="brute").fit(Xtr, ytr).predict(Xte)


def best_sensor_model(X: np.ndarray, y: np.ndarray, groups: np.ndarray, train: np.ndarray,
                      ks: Sequence[int], n_inner: int, seed: int, stride: int = 1) -> int:
    """Choose k of the k-NN line model on validation files INSIDE the training rows
    (grouped inner K-fold over files); returns the k with the best mean exact-line accuracy."""
    from physml import splits as _splits

    inner = _splits.group_kfold(groups[train], n_inner, seed=seed, what="file")
    score = {k: [] for k in ks}
    for sp in inner:
        a, b = train[sp.train][::stride], train[sp.test]
        for k in ks:
            score[k].append(float(np.mean(knn_lines(X[a], y[a], X[b], k) == y[b])))
    return max(ks, key=lambda k: (np.mean(score[k]), -k))


def run_sensor_folds(X: np.ndarray, labels: pd.DataFrame, split_list, ks: Sequence[int],
                     n_inner: int, stride: int) -> pd.DataFrame:
    """The best pure sensor model per fold: k of k-NN chosen on inner validation files, then
    scored on the fold's test files. Columns as :func:`run_folds` plus ``k``."""
    from .baselines import score_lines

    y = labels["gcode_string"].to_numpy()
    g = labels["file"].to_numpy()
    recs = []
    for seed, sp in split_list:
        k = best_sensor_model(X, y, g, sp.train, ks, n_inner, seed, stride)
        tr = sp.train[::stride]
        pred = knn_lines(X[tr], y[tr], X[sp.test], k)
        recs.append({"method": "knn_sensor", "seed": seed, "fold": sp.fold, "k": k,
                     **score_lines(pred, y[sp.test])})
    return pd.DataFrame(recs)


def kinematic_check(rows: pd.DataFrame, config: AlignmentConfig) -> pd.DataFrame:
    """Per program: kinematic duration of the run (rows, before any time scale) against the
    median recorded run (rows after the restart), and the correlation over lines of kinematic
    and observed rows per line (mean over the program's files)."""
    programs = tokens.recover_programs(rows)
    prog_of = tokens.program_of_file(programs)
    by_prog = rows["file"].map(prog_of)
    out = []
    for p in programs:
        r = rows[by_prog == p.name]
        kw = dict(rapid_rate=config.rapid_rate, machine_move_s=config.machine_move_s,
                  rows_per_second=config.rows_per_second, bins_per_row=1)
        kin = build_timeline(p, r, **kw)
        obs = build_timeline(p, r, durations="observed", **kw)
        k_rows = np.asarray(kin.seconds) * config.rows_per_second
        o_rows = np.bincount(obs.bin_line, minlength=len(obs.lines)).astype(float)
        run = [len(g) - restart_row(g["gcode_line"].to_numpy()) for _, g in r.groupby("file")]
        out.append({"program": p.name, "files": len(p.files), "lines": len(p.lines),
                    "kinematic_rows": float(k_rows.sum()),
                    "recorded_rows_median": float(np.median(run)),
                    "ratio": float(np.median(run) / k_rows.sum()),
                    "line_correlation": float(np.corrcoef(k_rows, o_rows)[0, 1])})
    return pd.DataFrame(out)


def phase_check(rows: pd.DataFrame) -> pd.DataFrame:
    """Per program, how much of "which line" a status row can tell at all (a description of
    the recordings, not a score of a model).

    Over the program's typical recordings (run length within 25% of the median, after
    :func:`restart_row`): ``files``, ``lines`` (in the program), ``run_rows`` (median run),
    ``rows_per_line`` (mean rows a line is reported for), ``lines_in_every_run`` (share of
    the reported lines that every typical run reports: a line shorter than the ~0.26 s between
    status rows shows up only when a row happens to sample it), ``template_exact`` (exact-line
    accuracy of the *modal run* of the other typical recordings, :func:`modal_run`, read row by
    row against each held-out one: a clock that knows the program and its restart row
    perfectly), ``template_within_1`` (its rows at most one line number off) and
    ``scored_rows`` (the held-out rows those two are over).
    """
    programs = tokens.recover_programs(rows)
    prog_of = tokens.program_of_file(programs)
    by_prog = rows["file"].map(prog_of).to_numpy()
    out = []
    for p in programs:
        r = rows[by_prog == p.name]
        runs = {f: g["gcode_line"].to_numpy()[restart_row(g["gcode_line"].to_numpy()):]
                for f, g in r.groupby("file", sort=False)}
        med = np.median([len(v) for v in runs.values()])
        typ = {f: v for f, v in runs.items() if abs(len(v) - med) <= 0.25 * med}
        if len(typ) < 2:
            raise ValueError(f"phase_check: program {p.name} has {len(typ)} typical "
                             "recording(s); need 2 to hold one out")
        hits = near = n = 0
        for f, v in typ.items():
            tpl = modal_run([u for g, u in typ.items() if g != f])
            k = min(len(tpl), len(v))
            hits += int(np.sum(tpl[:k] == v[:k]))
            near += int(np.sum(np.abs(tpl[:k] - v[:k]) <= 1))
            n += len(v)  # rows past the template's end count as wrong
        counts = pd.DataFrame({f: pd.Series(v).value_counts() for f, v in typ.items()}).fillna(0)
        out.append({"program": p.name, "files": len(typ), "lines": len(p.lines),
                    "run_rows": float(med), "scored_rows": n,
                    "rows_per_line": float(counts.mean(axis=1).mean()),
                    "lines_in_every_run": float(np.mean((counts > 0).all(axis=1))),
                    "template_exact": hits / n, "template_within_1": near / n})
    return pd.DataFrame(out)


def perfect_clock_overall(pc: pd.DataFrame) -> float:
    """Exact-line accuracy of the perfect clock over every scored row of every program: the
    per-program ``template_exact`` of :func:`phase_check` weighted by its ``scored_rows``."""
    return float((pc["template_exact"] * pc["scored_rows"]).sum() / pc["scored_rows"].sum())
