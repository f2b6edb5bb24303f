"""physml.jsonfile: the shared first checks of every small JSON record."""

from __future__ import annotations

import pytest

from physml.jsonfile import read_object


class MyError(Exception):
    pass


def test_an_object_is_returned(tmp_path):
    p = tmp_path / "ok.json"
    p.write_text('{"a": 1}')
    assert read_object(p) == {"a": 1}


@pytest.mark.parametrize("content, message", [
    (None, "no such model manifest"),
    ("{not json", "not valid JSON"),
    (b"\xff\xfe{}", "not valid JSON"),
    ("[1, 2]", "expected a JSON object, got list"),
])
def test_bad_files_raise_the_callers_error_naming_the_file(tmp_path, content, message):
    p = tmp_path / "m.json"
    if isinstance(content, bytes):
        p.write_bytes(content)
    elif content is not None:
        p.write_text(content)
    with pytest.raises(MyError, match=message) as e:
        read_object(p, MyError, "model manifest")
    assert str(p) in str(e.value)
