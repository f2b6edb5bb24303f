"""Reading a JSON object from a file, with errors that name the file.

Shipped models, recorded runs and saved models each keep a small JSON record. Each reader
raises its own error class (the caller's contract), but the first checks are the same: the
file exists, it parses, and it holds an object.
"""

from __future__ import annotations

import json
from pathlib import Path


def read_object(path: str | Path, error: type[Exception] = ValueError,
                what: str = "JSON file") -> dict:
    """The JSON object in ``path``. Raises ``error`` naming ``path`` when the file does not
    exist ("no such ``what``"), is not valid UTF-8 JSON, or holds anything but an object."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: no such {what}")
    try:
        obj = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise error(f"{path}: not valid JSON ({e})") from None
    if not isinstance(obj, dict):
        raise error(f"{path}: expected a JSON object, got {type(obj).__name__}")
    return obj
