"""Column vocabulary of the CNC recordings: sensor nodes, motor signals, controller fields, targets.

One row of a recording is one controller status report (about 4 per second). Columns fall in
four groups, and only the first two may ever be model inputs:

- sensor nodes: ``<node>.<channel>`` for the 16 node names in :data:`NODES` and the 17 channels
  in :data:`CHANNELS` (accelerometer ``Ax Ay Az`` in g, gyro ``Gx Gy Gz`` in deg/s,
  magnetometer ``Mx My Mz`` in µT-like counts, ``Pressure`` kPa, ``Temperature`` °C,
  ``Proximity`` and ``ColorR/G/B/A`` counts, ``RMS`` vibration counts);
- motor drive signals ``spindle x_motor y_motor z_motor`` (every file) and their currents
  ``spindle_A ... z_motor_A`` (all but one file);
- controller status fields (:data:`CONTROLLER_FIELDS`): the machine's own report of what it is
  doing (``line`` is the target, ``momo`` the motion mode, ``pos*``/``mpo*`` the positions).
  They are never model inputs; :func:`physml.cnc.features.model_input_columns` is the one
  gate and a test asserts none of these passes it;
- targets ``gcode_line`` (line number, int) and ``gcode_string`` (the line's text).

A *source* is a group of input columns that is present or absent as a whole in a file: each of
the 16 nodes, ``motor`` (the four drive signals) and ``motor_current`` (the four currents).
"""

from __future__ import annotations

import re

#: The 16 sensor-node names that occur in the recordings, in a fixed order.
NODES: tuple[str, ...] = (
    "frame_l2", "frame_r2", "y_bed__3",  # in every file
    "spindle2", "y_bed__4", "frame_l3", "frame_b2", "frame_r1", "y_bed__1", "xa_motor",
    "z_gant_2", "spindle1", "y_bed__2", "frame_l1", "frame_b1", "z_gant_1",
)
#: Nodes present in every shipped recording.
ALWAYS_PRESENT_NODES: tuple[str, ...] = ("frame_l2", "frame_r2", "y_bed__3")

#: The 17 channels of each node.
CHANNELS: tuple[str, ...] = (
    "Ax", "Ay", "Az", "Gx", "Gy", "Gz", "Mx", "My", "Mz",
    "Pressure", "Temperature", "Proximity", "ColorR", "ColorG", "ColorB", "ColorA", "RMS",
)
#: Channel groups used by the modality ablation (issue 11, notebook 04).
MODALITIES: dict[str, tuple[str, ...]] = {
    "accelerometer": ("Ax", "Ay", "Az"),
    "gyro": ("Gx", "Gy", "Gz"),
    "magnetometer": ("Mx", "My", "Mz"),
    "pressure_temperature": ("Pressure", "Temperature"),
    "proximity_colour": ("Proximity", "ColorR", "ColorG", "ColorB", "ColorA"),
    "rms": ("RMS",),
}

MOTOR_SIGNALS: tuple[str, ...] = ("spindle", "x_motor", "y_motor", "z_motor")
MOTOR_CURRENTS: tuple[str, ...] = ("spindle_A", "x_motor_A", "y_motor_A", "z_motor_A")

#: Sources: groups of input columns present or absent together in a file.
SOURCES: tuple[str, ...] = NODES + ("motor", "motor_current")

#: Controller status fields: never model inputs (they state the answer or the kinematics).
CONTROLLER_FIELDS: tuple[str, ...] = (
    "t_console", "stat", "line", "posx", "posy", "posz", "mpox", "mpoy", "mpoz", "vel",
    "feed", "unit", "dist", "plane", "coor", "momo", "raw_json",
)
#: Patterns naming forbidden model inputs (issue 11): controller fields and their families.
FORBIDDEN_INPUT_PATTERNS: tuple[str, ...] = (
    r"line", r"pos.*", r"mpo.*", r"feed", r"dist", r"momo", r"stat", r"raw_json", r"coor",
    r"unit", r"vel", r"plane", r"t_console", r"gcode_.*",
)
TARGETS: tuple[str, ...] = ("gcode_line", "gcode_string")

#: Controller fields kept in the shipped copy: only for the labelled leakage demonstrations
#: (notebook 02) and the leaky kinematics reference (notebook 03), and to check labels.
KEPT_CONTROLLER_FIELDS: tuple[str, ...] = (
    "stat", "line", "posx", "posy", "posz", "feed", "momo",
)


def node_columns(node: str) -> tuple[str, ...]:
    """The 17 column names ``<node>.<channel>`` of one node."""
    if node not in NODES:
        raise ValueError(f"unknown sensor node {node!r}; known nodes: {', '.join(NODES)}")
    return tuple(f"{node}.{c}" for c in CHANNELS)


def source_columns(source: str) -> tuple[str, ...]:
    """Input columns of one source (a node, ``motor`` or ``motor_current``)."""
    if source == "motor":
        return MOTOR_SIGNALS
    if source == "motor_current":
        return MOTOR_CURRENTS
    return node_columns(source)


def source_of(column: str) -> str:
    """The source an input column belongs to (inverse of :func:`source_columns`).

    >>> source_of("x_motor"), source_of("x_motor_A"), source_of("frame_l2.ax")
    ('motor', 'motor_current', 'frame_l2')
    """
    if column in MOTOR_SIGNALS:
        return "motor"
    if column in MOTOR_CURRENTS:
        return "motor_current"
    return column.split(".", 1)[0]


#: Every column that may be a model input, in a fixed order: 16 x 17 node channels + 8 motor.
INPUT_COLUMNS: tuple[str, ...] = tuple(c for s in SOURCES for c in source_columns(s))


def is_forbidden_input(column: str) -> bool:
    """True when ``column`` is a controller field or target (never a model input)."""
    return any(re.fullmatch(p, column) for p in FORBIDDEN_INPUT_PATTERNS)


_NAME = re.compile(r"^(?P<kind>[a-z]+?)(?P<campaign>150025)?_(?P<num>\d+)_aligned\.csv(\.gz)?$")
OPERATIONS: tuple[str, ...] = ("face", "pocket", "adaptive")


def parse_file_name(name: str) -> dict[str, object]:
    """``{kind}_{NNN}_aligned.csv[.gz]`` → kind, operation, campaign, damaged, number.

    ``campaign`` is ``"c1"`` (no suffix), ``"c2"`` (suffix ``150025``) or ``"damage"``
    (``damage*`` runs with a damaged tool). Names that do not follow the pattern give ``None``
    for every field but ``file`` (recordings from elsewhere can still be read).

    >>> parse_file_name("pocket150025_007_aligned.csv.gz")["campaign"]
    'c2'
    >>> parse_file_name("damageface_002_aligned.csv")["operation"]
    'face'
    """
    m = _NAME.match(name)
    stem = re.sub(r"_aligned\.csv(\.gz)?$", "", name)
    if m is None:
        return {"file": stem, "kind": None, "operation": None, "campaign": None,
                "damaged": None, "number": None}
    kind = m["kind"] + (m["campaign"] or "")
    damaged = m["kind"].startswith("damage")
    operation = m["kind"].removeprefix("damage")
    if operation not in OPERATIONS:
        return {"file": stem, "kind": kind, "operation": None, "campaign": None,
                "damaged": damaged, "number": int(m["num"])}
    campaign = "damage" if damaged else ("c2" if m["campaign"] else "c1")
    return {"file": stem, "kind": kind, "operation": operation, "campaign": campaign,
            "damaged": damaged, "number": int(m["num"])}
