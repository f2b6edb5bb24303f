"""Session JSON (firmware format 2.x, and legacy bare lists): load, validate, write.

Format::

    {"version": "2.x", "timestamp": str, "device"?: {...},
     "calibration"?: {"mag": {"hardIron": [3] (µT), "softIron": [[3x3]]}},
     "samples": [{"ax", "ay", "az", "gx", "gy", "gz", "mx", "my", "mz", ...}, ...],
     "labels": [...], "metadata"?: {...}}

Raw sample units are LSB: accelerometer 8192 LSB/g, gyroscope 114.28 LSB/(°/s). The
magnetometer format is named by ``device.magFormat`` (absent: "int16"):

* "int16": signed values, 1024 LSB per gauss, i.e. 100/1024 µT per LSB (the legacy firmware);
* "mmc5603-20bit": the MEMSIC MMC5603's 20-bit output, offset binary: 0 field reads
  2^19 = 524288 counts, 16384 counts per gauss (1 G = 100 µT), so
  µT = (counts − 524288) · 100 / 16384 (`mmc5603_counts_to_uT`).

Labels come in two shapes, both accepted::

    {"startIndex": i0, "endIndex": i1, "fingers": {"thumb": "extended"|"flexed"|"unknown", ...}}
    {"start_sample": i0, "end_sample": i1, "labels": {"fingers": {...}}}

Label ranges are half-open sample-index ranges [start, end) (an end equal to the sample count is
the last valid end). Older files are a bare list of samples (no labels, no calibration).
The calibrated reading is ``softIron @ (raw_uT - hardIron)``.

Timestamps: a sample may carry ``"t"``, milliseconds since the recording started (the
firmware's clock); if one sample has it every sample must, strictly increasing. They become
`Session.time_s`, over which the gyroscope is integrated (`orientation.session_rotations`).
With timestamps a label may also be given by time, matched to the samples with a tolerance
(`label_tolerance_ms`, default half a sample at 26 Hz)::

    {"startTime": t0_ms, "endTime": t1_ms, "fingers": {...}}   (samples with t0 <= t <= t1)

Line-delimited files (``.jsonl`` / ``.ndjson``) are parsed one record at a time, so a long
recording never needs one giant JSON document in memory: line 1 is the header object (every
top-level field above but ``samples`` and ``labels``); every further line is a sample object,
or ``{"label": {...}}`` for a label. Every error names the file, the record (sample, label or
line) and the field.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .hand import FINGERS

ACCEL_LSB_PER_G = 8192.0
GYRO_LSB_PER_DPS = 114.28
MAG_UT_PER_LSB = 100.0 / 1024.0
MMC5603_NULL_COUNTS = 1 << 19  # 20-bit offset binary: zero field
MMC5603_COUNTS_PER_GAUSS = 16384.0
MAG_FORMATS = ("int16", "mmc5603-20bit")


def mmc5603_counts_to_uT(counts):
    """MMC5603 20-bit offset-binary counts (array-like, 0..2^20−1) → field, µT.

    >>> mmc5603_counts_to_uT([524288, 540672, 516096]).tolist()
    [0.0, 100.0, -50.0]
    """
    c = np.asarray(counts, float)
    bad = (c < 0) | (c > (1 << 20) - 1)
    if np.any(bad):
        raise ValueError(f"MMC5603 counts must be in [0, {(1 << 20) - 1}], got "
                         f"{c[bad][:3].tolist()}")
    return (c - MMC5603_NULL_COUNTS) * 100.0 / MMC5603_COUNTS_PER_GAUSS


FINGER_STATES = {"extended": 0, "flexed": 1, "unknown": -1}
_STATE_NAMES = {0: "extended", 1: "flexed", -1: "unknown"}


class SessionFormatError(ValueError):
    """A session file does not follow the format; the message names file, index and field."""


@dataclass
class Label:
    """One labelled range [start, end) with finger states (5,) int: 0 ext, 1 flex, -1 unknown."""

    start: int
    end: int
    fingers: np.ndarray


@dataclass
class Session:
    """A loaded recording.

    Attributes:
        mag_raw_uT: (n, 3) magnetometer reading before calibration, µT.
        accel_g: (n, 3) accelerometer, g (None if the file has no accelerometer fields).
        gyro_dps: (n, 3) gyroscope, °/s (None if absent).
        states: (n, 5) int8 finger state per sample: 0 extended, 1 flexed, -1 unknown/unlabelled.
        labels: list of Label.
        hard_iron_uT: (3,) or None; soft_iron: (3, 3) or None.
        time_s: (n,) sample times from the file's "t" fields, s (None if absent).
    """

    mag_raw_uT: np.ndarray
    accel_g: np.ndarray | None = None
    gyro_dps: np.ndarray | None = None
    states: np.ndarray | None = None
    labels: list = field(default_factory=list)
    hard_iron_uT: np.ndarray | None = None
    soft_iron: np.ndarray | None = None
    version: str | None = None
    timestamp: str | None = None
    device: dict | None = None
    metadata: dict | None = None
    path: str | None = None
    time_s: np.ndarray | None = None

    def __post_init__(self):
        n = len(self.mag_raw_uT)
        if self.states is None:
            self.states = np.full((n, 5), -1, dtype=np.int8)

    @property
    def n_samples(self):
        return len(self.mag_raw_uT)

    def calibrated_uT(self):
        """(n, 3) calibrated magnetometer reading softIron @ (raw - hardIron), µT."""
        b = self.mag_raw_uT
        if self.hard_iron_uT is not None:
            b = b - self.hard_iron_uT
        if self.soft_iron is not None:
            b = b @ self.soft_iron.T
        return b

    def labelled(self):
        """Samples whose five finger states are all known.

        Returns:
            readings (m, 3) calibrated µT, bits (m, 5) int, sample indices (m,).
        """
        ok = np.all(self.states >= 0, axis=1)
        idx = np.flatnonzero(ok)
        return self.calibrated_uT()[idx], self.states[idx].astype(np.int64), idx


def _num(v, where):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise SessionFormatError(f"{where}: expected a finite number, got {v!r}")
    return float(v)


#: default tolerance of time-based label matching: half a sample period at 26 Hz, ms
LABEL_TOLERANCE_MS = 1000.0 / 26.0 / 2.0


def _label_range_from_time(lab, where, time_ms, tol_ms):
    """Half-open sample range [start, end) of a label given by startTime/endTime (ms)."""
    if time_ms is None:
        raise SessionFormatError(f"{where}.startTime: a label by time needs sample timestamps "
                                 f"(samples[].t), and this file has none")
    bounds = []
    for k in ("startTime", "endTime"):
        v = lab.get(k)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise SessionFormatError(f"{where}.{k}: expected a finite time in ms, got {v!r}")
        bounds.append(float(v))
    t0, t1 = bounds
    if t1 < t0:
        raise SessionFormatError(f"{where}.startTime/endTime: end {t1} ms before start {t0} ms")
    if t0 < time_ms[0] - tol_ms or t1 > time_ms[-1] + tol_ms:
        raise SessionFormatError(
            f"{where}.startTime/endTime: [{t0}, {t1}] ms outside the recording "
            f"[{time_ms[0]}, {time_ms[-1]}] ms (tolerance {tol_ms:g} ms)")
    start = int(np.searchsorted(time_ms, t0 - tol_ms, side="left"))
    end = int(np.searchsorted(time_ms, t1 + tol_ms, side="right"))
    if end <= start:
        raise SessionFormatError(f"{where}.startTime/endTime: no sample within [{t0}, {t1}] ms "
                                 f"± {tol_ms:g} ms")
    return start, end


def _parse_label(j, lab, n, path, time_ms=None, tol_ms=LABEL_TOLERANCE_MS):
    where = f"{path}: labels[{j}]"
    if not isinstance(lab, dict):
        raise SessionFormatError(f"{where}: expected an object, got {type(lab).__name__}")
    if "startTime" in lab:
        keys, fingers = ("startTime", "endTime"), lab.get("fingers")
        fwhere = f"{where}.fingers"
    elif "startIndex" in lab:
        keys, fingers = ("startIndex", "endIndex"), lab.get("fingers")
        fwhere = f"{where}.fingers"
    elif "start_sample" in lab:
        keys = ("start_sample", "end_sample")
        inner = lab.get("labels")
        if not isinstance(inner, dict):
            raise SessionFormatError(f"{where}.labels: expected an object with 'fingers'")
        fingers, fwhere = inner.get("fingers"), f"{where}.labels.fingers"
    else:
        raise SessionFormatError(
            f"{where}: expected 'startIndex'/'endIndex', 'start_sample'/'end_sample' or "
            f"'startTime'/'endTime', got keys {sorted(lab)}")
    if keys[0] == "startTime":
        start, end = _label_range_from_time(lab, where, time_ms, tol_ms)
    else:
        bounds = []
        for k in keys:
            v = lab.get(k)
            if isinstance(v, bool) or not isinstance(v, int):
                raise SessionFormatError(f"{where}.{k}: expected an integer sample index, "
                                         f"got {v!r}")
            bounds.append(v)
        start, end = bounds
    if not (0 <= start < end <= n):
        raise SessionFormatError(
            f"{where}.{keys[0]}/{keys[1]}: range [{start}, {end}) outside the {n} samples "
            f"(need 0 <= start < end <= {n})")
    if not isinstance(fingers, dict):
        raise SessionFormatError(f"{fwhere}: expected an object with keys {list(FINGERS)}")
    st = np.empty(5, dtype=np.int8)
    for i, f in enumerate(FINGERS):
        if f not in fingers:
            raise SessionFormatError(f"{fwhere}.{f}: missing")
        v = fingers[f]
        if v not in FINGER_STATES:
            raise SessionFormatError(
                f"{fwhere}.{f}: unknown finger state {v!r}, expected one of {list(FINGER_STATES)}")
        st[i] = FINGER_STATES[v]
    return Label(start, end, st)


def _timestamps(samples, path):
    """Sample times (n,) ms from the "t" fields, or None when no sample has one."""
    has = ["t" in s for s in samples]
    if not any(has):
        return None
    t = np.empty(len(samples))
    for i, smp in enumerate(samples):
        if "t" not in smp:
            raise SessionFormatError(f"{path}: samples[{i}].t: missing (other samples have "
                                     f"timestamps)")
        t[i] = _num(smp["t"], f"{path}: samples[{i}].t")
    back = np.flatnonzero(np.diff(t) <= 0)
    if back.size:
        i = int(back[0]) + 1
        raise SessionFormatError(f"{path}: samples[{i}].t: {t[i]:g} ms is not after "
                                 f"samples[{i - 1}].t = {t[i - 1]:g} ms (timestamps must "
                                 f"increase)")
    return t


def _triple(samples, keys, path, required, scale):
    have = [all(k in s for k in keys) for s in samples]
    if not any(have) and not required:
        return None
    out = np.empty((len(samples), 3))
    for i, s in enumerate(samples):
        for c, k in enumerate(keys):
            if k not in s:
                raise SessionFormatError(f"{path}: samples[{i}].{k}: missing")
            out[i, c] = _num(s[k], f"{path}: samples[{i}].{k}")
    return out * scale


def _read_json(path):
    """(header dict or None for a legacy list, samples list, labels list) of a .json file."""
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise SessionFormatError(
            f"{path}: truncated or invalid JSON at line {e.lineno} column {e.colno}: {e.msg}"
        ) from e
    if isinstance(doc, list):
        return None, doc, []
    if not isinstance(doc, dict):
        raise SessionFormatError(f"{path}: expected an object or a list of samples")
    if "samples" not in doc:
        raise SessionFormatError(f"{path}: missing top-level field 'samples'")
    labels = doc.get("labels", [])
    if not isinstance(labels, list):
        raise SessionFormatError(f"{path}: labels: expected a list")
    return doc, doc["samples"], labels


def _read_jsonl(path):
    """(header, samples, labels) of a line-delimited file, decoded one line at a time."""
    header, samples, labels = None, [], []
    decoder = json.JSONDecoder()
    with open(path, encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            text = line.strip()
            if not text:
                continue
            try:
                rec, end = decoder.raw_decode(text)
            except json.JSONDecodeError as e:
                raise SessionFormatError(
                    f"{path}: line {line_no}: truncated or invalid JSON at column {e.colno}: "
                    f"{e.msg}") from e
            if end != len(text):
                raise SessionFormatError(f"{path}: line {line_no}: more than one JSON value "
                                         f"(column {end + 1})")
            if not isinstance(rec, dict):
                raise SessionFormatError(f"{path}: line {line_no}: expected an object, got "
                                         f"{type(rec).__name__}")
            if header is None:
                if "samples" in rec or "labels" in rec:
                    raise SessionFormatError(f"{path}: line 1 (header): 'samples'/'labels' "
                                             f"belong on their own lines")
                header = rec
            elif set(rec) == {"label"}:
                labels.append(rec["label"])
            else:
                samples.append(rec)
    if header is None:
        raise SessionFormatError(f"{path}: empty file (expected a header line)")
    return header, samples, labels


#: file formats by suffix
READERS = {".json": _read_json, ".jsonl": _read_jsonl, ".ndjson": _read_jsonl}


def load_session(path, label_tolerance_ms=LABEL_TOLERANCE_MS):
    """Read and validate a session file (version 2.x, legacy bare list, or line-delimited).

    Args:
        path: str or Path of a .json, .jsonl or .ndjson file.
        label_tolerance_ms: tolerance (>= 0) of labels given by time (startTime/endTime).

    Returns:
        Session.

    Raises:
        SessionFormatError naming the file, the sample, label or line and the field.
    """
    path = Path(path)
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise SessionFormatError(f"{path}: unknown file format {path.suffix!r}, expected one of "
                                 f"{sorted(READERS)}")
    if not label_tolerance_ms >= 0:
        raise ValueError(f"label_tolerance_ms must be >= 0, got {label_tolerance_ms}")
    meta, samples, labels_in = reader(path)
    if meta is not None:
        version = meta.get("version")
        if version is None or not str(version).startswith("2"):
            raise SessionFormatError(f"{path}: version: expected '2.x', got {version!r}")
    else:
        meta = {}
    if not isinstance(samples, list) or not samples:
        raise SessionFormatError(f"{path}: samples: expected a non-empty list")
    for i, smp in enumerate(samples):
        if not isinstance(smp, dict):
            raise SessionFormatError(f"{path}: samples[{i}]: expected an object")
    device = meta.get("device") or {}
    if not isinstance(device, dict):
        raise SessionFormatError(f"{path}: device: expected an object")
    fmt = device.get("magFormat", "int16")
    if fmt not in MAG_FORMATS:
        raise SessionFormatError(f"{path}: device.magFormat: unknown magnetometer format "
                                 f"{fmt!r}, expected one of {list(MAG_FORMATS)}")
    if fmt == "int16":
        mag = _triple(samples, ("mx", "my", "mz"), path, True, MAG_UT_PER_LSB)
    else:
        counts = _triple(samples, ("mx", "my", "mz"), path, True, 1.0)
        bad = np.flatnonzero(np.any((counts < 0) | (counts > (1 << 20) - 1)
                                    | (counts != np.round(counts)), axis=1))
        if bad.size:
            i = int(bad[0])
            raise SessionFormatError(f"{path}: samples[{i}].mx/my/mz: {counts[i].tolist()} is "
                                     f"not a 20-bit count (integer in [0, {(1 << 20) - 1}])")
        mag = mmc5603_counts_to_uT(counts)
    acc = _triple(samples, ("ax", "ay", "az"), path, False, 1.0 / ACCEL_LSB_PER_G)
    gyr = _triple(samples, ("gx", "gy", "gz"), path, False, 1.0 / GYRO_LSB_PER_DPS)
    time_ms = _timestamps(samples, path)
    n = len(samples)
    labels = [_parse_label(j, lab, n, path, time_ms, label_tolerance_ms)
              for j, lab in enumerate(labels_in)]
    states = np.full((n, 5), -1, dtype=np.int8)
    owner = np.full(n, -1)
    for j, lab in enumerate(labels):
        seg = slice(lab.start, lab.end)
        clash = (owner[seg] >= 0) & np.any(states[seg] != lab.fingers, axis=1)
        if np.any(clash):
            i = lab.start + int(np.flatnonzero(clash)[0])
            raise SessionFormatError(
                f"{path}: labels[{j}]: sample {i} already labelled differently by "
                f"labels[{owner[i]}]")
        states[seg] = lab.fingers
        owner[seg] = j
    hard, soft = _calibration(meta.get("calibration"), path)
    return Session(mag_raw_uT=mag, accel_g=acc, gyro_dps=gyr, states=states, labels=labels,
                   hard_iron_uT=hard, soft_iron=soft,
                   version=str(meta["version"]) if "version" in meta else None,
                   timestamp=meta.get("timestamp"), device=meta.get("device"),
                   metadata=meta.get("metadata"), path=str(path),
                   time_s=None if time_ms is None else time_ms / 1000.0)


def _calibration(cal, path):
    """(hardIron (3,), softIron (3, 3)) of a calibration object, or (None, None)."""
    if cal is None:
        return None, None
    mag_cal = cal.get("mag") if isinstance(cal, dict) else None
    if not isinstance(mag_cal, dict):
        raise SessionFormatError(f"{path}: calibration.mag: expected an object")
    try:
        hard = np.asarray(mag_cal["hardIron"], float).reshape(3)
        soft = np.asarray(mag_cal["softIron"], float).reshape(3, 3)
    except (KeyError, ValueError, TypeError) as e:
        raise SessionFormatError(
            f"{path}: calibration.mag: expected hardIron [3] and softIron [[3x3]] ({e})"
        ) from e
    if not (np.all(np.isfinite(hard)) and np.all(np.isfinite(soft))):
        raise SessionFormatError(f"{path}: calibration.mag: non-finite values")
    return hard, soft


def session_to_json(session, label_shape="startIndex"):
    """The 2.x JSON document (dict) for a Session; label_shape 'startIndex' or 'start_sample'."""
    if label_shape not in ("startIndex", "start_sample"):
        raise ValueError(f"label_shape must be 'startIndex' or 'start_sample', got {label_shape!r}")
    n = session.n_samples
    mag = np.rint(session.mag_raw_uT / MAG_UT_PER_LSB).astype(int)
    cols = {"mx": mag[:, 0], "my": mag[:, 1], "mz": mag[:, 2]}
    if session.accel_g is not None:
        a = np.rint(session.accel_g * ACCEL_LSB_PER_G).astype(int)
        cols.update(ax=a[:, 0], ay=a[:, 1], az=a[:, 2])
    if session.gyro_dps is not None:
        g = np.rint(session.gyro_dps * GYRO_LSB_PER_DPS).astype(int)
        cols.update(gx=g[:, 0], gy=g[:, 1], gz=g[:, 2])
    if session.time_s is not None:
        cols["t"] = np.round(1000.0 * np.asarray(session.time_s, float), 3)
    keys = [k for k in ("t", "ax", "ay", "az", "gx", "gy", "gz", "mx", "my", "mz") if k in cols]
    lists = [cols[k].tolist() for k in keys]
    samples = [dict(zip(keys, vals, strict=True)) for vals in zip(*lists, strict=True)]
    assert len(samples) == n
    labels = []
    for lab in session.labels:
        fingers = {f: _STATE_NAMES[int(s)] for f, s in zip(FINGERS, lab.fingers, strict=True)}
        if label_shape == "startIndex":
            labels.append({"startIndex": int(lab.start), "endIndex": int(lab.end),
                           "fingers": fingers})
        else:
            labels.append({"start_sample": int(lab.start), "end_sample": int(lab.end),
                           "labels": {"fingers": fingers}})
    doc = {"version": session.version or "2.1", "timestamp": session.timestamp or "",
           "samples": samples, "labels": labels}
    if session.device is not None:
        doc["device"] = session.device
    if session.hard_iron_uT is not None:
        doc["calibration"] = {"mag": {"hardIron": np.asarray(session.hard_iron_uT).tolist(),
                                      "softIron": np.asarray(session.soft_iron).tolist()}}
    if session.metadata is not None:
        doc["metadata"] = session.metadata
    return doc


def write_session(session, path, label_shape="startIndex"):
    """Write a Session as version-2.x JSON, or line-delimited for a .jsonl / .ndjson path (raw
    values quantised to LSB). Returns the Path."""
    path = Path(path)
    doc = session_to_json(session, label_shape)
    if READERS.get(path.suffix.lower()) is _read_jsonl:
        samples, labels = doc.pop("samples"), doc.pop("labels")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(doc) + "\n")
            for smp in samples:
                fh.write(json.dumps(smp) + "\n")
            for lab in labels:
                fh.write(json.dumps({"label": lab}) + "\n")
        return path
    path.write_text(json.dumps(doc))
    return path
