"""Session JSON loader: valid files in both label shapes and every kind of malformed file."""

import json

import numpy as np
import pytest

from physml.magnets.session import SessionFormatError, load_session

FINGERS = {"thumb": "extended", "index": "flexed", "middle": "extended", "ring": "unknown",
           "pinky": "flexed"}


def _samples(n):
    return [{"ax": 0, "ay": 0, "az": 8192, "gx": 114, "gy": 0, "gz": -228,
             "mx": 512 + i, "my": -1024, "mz": 2048, "mx_ut": 50.0} for i in range(n)]


def _doc(labels, n=10):
    return {"version": "2.1", "timestamp": "2025-01-01T00:00:00Z", "device": {"name": "x"},
            "calibration": {"mag": {"hardIron": [1.0, 2.0, 3.0],
                                    "softIron": [[1, 0, 0], [0, 2, 0], [0, 0, 1]]}},
            "samples": _samples(n), "labels": labels, "metadata": {"who": "test"}}


def _write(tmp_path, doc, name="s.json"):
    p = tmp_path / name
    p.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return p


def _check_loaded(s):
    assert s.n_samples == 10
    np.testing.assert_allclose(s.mag_raw_uT[0], [50.0, -100.0, 200.0])  # 1024 LSB = 100 µT
    np.testing.assert_allclose(s.accel_g[0], [0, 0, 1.0])
    np.testing.assert_allclose(s.gyro_dps[0], [114 / 114.28, 0, -228 / 114.28])
    np.testing.assert_allclose(s.calibrated_uT()[0], [49.0, 2 * (-102.0), 197.0])
    assert (s.states[2:5] == [0, 1, 0, -1, 1]).all()
    assert (s.states[:2] == -1).all() and (s.states[5:] == -1).all()
    assert s.labels[0].start == 2 and s.labels[0].end == 5


def test_loads_startIndex_label_shape(tmp_path):
    s = load_session(_write(tmp_path, _doc([{"startIndex": 2, "endIndex": 5,
                                             "fingers": FINGERS}])))
    _check_loaded(s)


def test_loads_start_sample_label_shape(tmp_path):
    s = load_session(_write(tmp_path, _doc([{"start_sample": 2, "end_sample": 5,
                                             "labels": {"fingers": FINGERS}}])))
    _check_loaded(s)


def test_loads_legacy_bare_list_of_samples(tmp_path):
    s = load_session(_write(tmp_path, _samples(7)))
    assert s.n_samples == 7 and s.version is None and s.labels == []
    assert (s.states == -1).all() and s.hard_iron_uT is None


def test_labelled_keeps_only_fully_known_states(tmp_path):
    f = dict(FINGERS, ring="flexed")
    s = load_session(_write(tmp_path, _doc([{"startIndex": 0, "endIndex": 3, "fingers": f},
                                            {"startIndex": 5, "endIndex": 6,
                                             "fingers": FINGERS}])))
    r, bits, idx = s.labelled()
    assert idx.tolist() == [0, 1, 2] and (bits == [0, 1, 0, 1, 1]).all()


def test_truncated_json_names_the_file_and_position(tmp_path):
    text = json.dumps(_doc([]))
    p = _write(tmp_path, text[: len(text) // 2], "cut.json")
    with pytest.raises(SessionFormatError, match=r"cut\.json.*truncated or invalid JSON at line"):
        load_session(p)


def test_missing_magnetometer_field_names_sample_and_field(tmp_path):
    doc = _doc([])
    del doc["samples"][7]["mz"]
    with pytest.raises(SessionFormatError, match=r"s\.json: samples\[7\]\.mz: missing"):
        load_session(_write(tmp_path, doc))


def test_non_numeric_magnetometer_value_names_sample_and_field(tmp_path):
    doc = _doc([])
    doc["samples"][3]["my"] = "12"
    with pytest.raises(SessionFormatError, match=r"samples\[3\]\.my: expected a finite number"):
        load_session(_write(tmp_path, doc))


@pytest.mark.parametrize("shape", ["startIndex", "start_sample"])
def test_label_range_outside_samples_names_label_and_fields(tmp_path, shape):
    lab = ({"startIndex": 4, "endIndex": 11, "fingers": FINGERS} if shape == "startIndex" else
           {"start_sample": 4, "end_sample": 11, "labels": {"fingers": FINGERS}})
    doc = _doc([{"startIndex": 0, "endIndex": 2, "fingers": FINGERS}, lab])
    with pytest.raises(SessionFormatError, match=r"s\.json: labels\[1\]\..*range \[4, 11\) "
                                                 r"outside the 10 samples"):
        load_session(_write(tmp_path, doc))


@pytest.mark.parametrize("shape", ["startIndex", "start_sample"])
def test_unknown_finger_state_names_label_finger_and_value(tmp_path, shape):
    f = dict(FINGERS, middle="bent")
    lab = ({"startIndex": 1, "endIndex": 2, "fingers": f} if shape == "startIndex" else
           {"start_sample": 1, "end_sample": 2, "labels": {"fingers": f}})
    with pytest.raises(SessionFormatError, match=r"labels\[0\]\.(labels\.)?fingers\.middle: "
                                                 r"unknown finger state 'bent'"):
        load_session(_write(tmp_path, _doc([lab])))


def test_missing_finger_and_unknown_label_shape_raise(tmp_path):
    f = {k: v for k, v in FINGERS.items() if k != "pinky"}
    with pytest.raises(SessionFormatError, match=r"labels\[0\]\.fingers\.pinky: missing"):
        load_session(_write(tmp_path, _doc([{"startIndex": 0, "endIndex": 1, "fingers": f}])))
    with pytest.raises(SessionFormatError, match=r"labels\[0\]: expected 'startIndex'"):
        load_session(_write(tmp_path, _doc([{"from": 0, "to": 1}])))


def test_conflicting_overlapping_labels_raise(tmp_path):
    f2 = dict(FINGERS, thumb="flexed")
    doc = _doc([{"startIndex": 0, "endIndex": 5, "fingers": FINGERS},
                {"startIndex": 4, "endIndex": 6, "fingers": f2}])
    with pytest.raises(SessionFormatError, match=r"labels\[1\]: sample 4 already labelled"):
        load_session(_write(tmp_path, doc))


def test_wrong_version_and_bad_calibration_raise(tmp_path):
    doc = _doc([])
    doc["version"] = "1.0"
    with pytest.raises(SessionFormatError, match="version: expected '2.x'"):
        load_session(_write(tmp_path, doc))
    doc = _doc([])
    doc["calibration"]["mag"]["softIron"] = [[1, 0], [0, 1]]
    with pytest.raises(SessionFormatError, match=r"calibration\.mag"):
        load_session(_write(tmp_path, doc))


def test_mmc5603_20bit_offset_binary_converts_to_microtesla(tmp_path):
    """Hand-computed: null 2^19 = 524288 counts; 16384 counts per gauss = per 100 µT.
    540672 = 524288 + 16384 → +100 µT; 516096 = 524288 − 8192 → −50 µT; 524288 + 5 → 5·100/16384
    = 0.030517578125 µT."""
    from physml.magnets.session import mmc5603_counts_to_uT

    doc = _doc([], n=3)
    doc["device"] = {"name": "x", "magFormat": "mmc5603-20bit"}
    for s, (mx, my, mz) in zip(doc["samples"], [(540672, 516096, 524293),
                                                (524288, 524288, 524288),
                                                (0, (1 << 20) - 1, 524288)], strict=True):
        s.update(mx=mx, my=my, mz=mz)
    got = load_session(_write(tmp_path, doc)).mag_raw_uT
    np.testing.assert_allclose(got[0], [100.0, -50.0, 0.030517578125], rtol=0, atol=1e-12)
    np.testing.assert_allclose(got[1], [0.0, 0.0, 0.0])
    np.testing.assert_allclose(got[2, :2], [-3200.0, 3199.993896484375])
    np.testing.assert_allclose(mmc5603_counts_to_uT(540672), 100.0)


def test_20bit_count_out_of_range_or_unknown_format_names_file_sample_and_field(tmp_path):
    doc = _doc([], n=3)
    doc["device"] = {"name": "x", "magFormat": "mmc5603-20bit"}
    for s in doc["samples"]:
        s.update(mx=524288, my=524288, mz=524288)
    doc["samples"][1]["my"] = 1 << 20
    p = _write(tmp_path, doc)
    with pytest.raises(SessionFormatError, match=r"s\.json: samples\[1\]\.mx/my/mz: "
                       r"\[524288.0, 1048576.0, 524288.0\] is not a 20-bit count \(integer in "
                       r"\[0, 1048575\]\)"):
        load_session(p)
    for smp in doc["samples"]:
        for k in ("mx", "my", "mz"):
            del smp[k]
    with pytest.raises(SessionFormatError, match=r"samples\[0\]\.mx: missing"):
        load_session(_write(tmp_path, doc))
    doc["device"]["magFormat"] = "hmc5883"
    with pytest.raises(SessionFormatError, match=r"device\.magFormat: unknown .*'hmc5883'"):
        load_session(_write(tmp_path, doc))


# ---------------------------------------------------------------- timestamps, labels by time
def _timed_doc(times_ms, labels):
    doc = _doc(labels, n=len(times_ms))
    for smp, t in zip(doc["samples"], times_ms, strict=True):
        smp["t"] = t
    return doc


TIMES = [0, 40, 75, 115, 150, 192, 230, 270, 305, 346]  # irregular, ~26 Hz


def test_timestamps_loaded_in_seconds_and_used_for_the_gyro_integration(tmp_path):
    """A constant 10 °/s about z integrated over the file's own (irregular) times turns by
    10 °/s × (t_k − t_0), not by k / rate: the angle at the last sample is 3.46°."""
    from physml.magnets.orientation import session_rotations

    doc = _timed_doc(TIMES, [])
    for smp in doc["samples"]:
        smp.update(gx=0, gy=0, gz=round(10 * 114.28))
    s = load_session(_write(tmp_path, doc))
    np.testing.assert_allclose(s.time_s, np.array(TIMES) / 1000.0)
    rot = session_rotations(s)  # no rate_hz and no metadata rate: the timestamps suffice
    angle = np.degrees(np.arctan2(rot[:, 1, 0], rot[:, 0, 0]))
    rate = round(10 * 114.28) / 114.28
    np.testing.assert_allclose(angle, rate * np.array(TIMES) / 1000.0, atol=1e-9)


def test_label_by_time_matched_within_tolerance(tmp_path):
    # 72 ms and 196 ms are within 5 ms of the samples at 75 and 192 ms
    s = load_session(_write(tmp_path, _timed_doc(TIMES, [
        {"startTime": 72, "endTime": 196, "fingers": FINGERS}])), label_tolerance_ms=5.0)
    assert (s.labels[0].start, s.labels[0].end) == (2, 6)
    assert (s.states[2:6] == [0, 1, 0, -1, 1]).all() and (s.states[6:] == -1).all()
    # with no tolerance the sample at 75 ms is still inside [72, 196]; at 192 ms too
    s0 = load_session(_write(tmp_path, _timed_doc(TIMES, [
        {"startTime": 76, "endTime": 191, "fingers": FINGERS}])), label_tolerance_ms=0.0)
    assert (s0.labels[0].start, s0.labels[0].end) == (3, 5)  # 115 and 150 ms only


def test_label_by_time_outside_recording_or_without_timestamps_raises(tmp_path):
    with pytest.raises(SessionFormatError, match=r"labels\[0\]\.startTime/endTime: \[-50.0, "
                                                 r"100.0\] ms outside the recording \[0.0, "
                                                 r"346.0\] ms \(tolerance 5 ms\)"):
        load_session(_write(tmp_path, _timed_doc(TIMES, [
            {"startTime": -50, "endTime": 100, "fingers": FINGERS}])), label_tolerance_ms=5.0)
    with pytest.raises(SessionFormatError, match=r"labels\[0\]\.startTime: a label by time "
                                                 r"needs sample timestamps"):
        load_session(_write(tmp_path, _doc([{"startTime": 0, "endTime": 100,
                                             "fingers": FINGERS}])))


def test_missing_or_non_increasing_timestamp_names_sample_and_field(tmp_path):
    doc = _timed_doc(TIMES, [])
    del doc["samples"][4]["t"]
    with pytest.raises(SessionFormatError, match=r"s\.json: samples\[4\]\.t: missing"):
        load_session(_write(tmp_path, doc))
    doc = _timed_doc([0, 40, 75, 75, 150, 192, 230, 270, 305, 346], [])
    with pytest.raises(SessionFormatError, match=r"samples\[3\]\.t: 75 ms is not after "
                                                 r"samples\[2\]\.t = 75 ms"):
        load_session(_write(tmp_path, doc))


# ---------------------------------------------------------------- line-delimited streaming
def _jsonl(doc):
    head = {k: v for k, v in doc.items() if k not in ("samples", "labels")}
    lines = [json.dumps(head)] + [json.dumps(s) for s in doc["samples"]]
    lines += [json.dumps({"label": lab}) for lab in doc["labels"]]
    return "\n".join(lines) + "\n"


def test_line_delimited_file_loads_like_the_json_file(tmp_path):
    doc = _doc([{"startIndex": 2, "endIndex": 5, "fingers": FINGERS}])
    s = load_session(_write(tmp_path, _jsonl(doc), "s.jsonl"))
    _check_loaded(s)
    assert s.metadata == {"who": "test"}


def test_round_trip_through_jsonl_keeps_values_times_and_labels(tmp_path):
    from physml.magnets.session import write_session

    doc = _timed_doc(TIMES, [{"startIndex": 2, "endIndex": 5, "fingers": FINGERS}])
    a = load_session(_write(tmp_path, doc))
    b = load_session(write_session(a, tmp_path / "back.ndjson"))
    np.testing.assert_allclose(b.mag_raw_uT, a.mag_raw_uT)
    np.testing.assert_allclose(b.time_s, a.time_s)
    assert (b.states == a.states).all()


def test_truncated_jsonl_names_file_and_line(tmp_path):
    text = _jsonl(_doc([]))
    cut = text[: text.rindex("\n", 0, len(text) - 1) + 20]  # the last sample cut mid-record
    n_lines = cut.count("\n") + 1
    with pytest.raises(SessionFormatError, match=rf"cut\.jsonl: line {n_lines}: truncated or "
                                                 r"invalid JSON"):
        load_session(_write(tmp_path, cut, "cut.jsonl"))


def test_jsonl_missing_field_and_bad_record_name_the_record(tmp_path):
    doc = _doc([])
    del doc["samples"][6]["mx"]
    with pytest.raises(SessionFormatError, match=r"s\.jsonl: samples\[6\]\.mx: missing"):
        load_session(_write(tmp_path, _jsonl(doc), "s.jsonl"))
    text = _jsonl(_doc([])).replace(json.dumps(_samples(10)[3]), "[1, 2, 3]")
    with pytest.raises(SessionFormatError, match=r"s\.jsonl: line 5: expected an object"):
        load_session(_write(tmp_path, text, "s.jsonl"))
    two = _jsonl(_doc([])).replace(json.dumps(_samples(10)[3]), '{"mx": 1} {"mx": 2}')
    # column 10: the first character after the first value (9 characters)
    with pytest.raises(SessionFormatError, match=r"s\.jsonl: line 5: more than one JSON value "
                                                 r"\(column 10\)"):
        load_session(_write(tmp_path, two, "s.jsonl"))


def test_unknown_file_format_names_the_file(tmp_path):
    p = _write(tmp_path, _doc([]), "s.csv")
    with pytest.raises(SessionFormatError, match=r"s\.csv: unknown file format '\.csv'"):
        load_session(p)


# ---------------------------------------------------------------- edges the mutation sweep found
def test_default_label_tolerance_is_half_a_sample_period_at_26_hz(tmp_path):
    from physml.magnets.session import LABEL_TOLERANCE_MS

    assert LABEL_TOLERANCE_MS == pytest.approx(19.2307692, rel=1e-6)
    ok = load_session(_write(tmp_path, _timed_doc(TIMES, [
        {"startTime": -19, "endTime": 346 + 19, "fingers": FINGERS}])))
    assert (ok.labels[0].start, ok.labels[0].end) == (0, 10)
    with pytest.raises(SessionFormatError, match="outside the recording"):
        load_session(_write(tmp_path, _timed_doc(TIMES, [
            {"startTime": -20, "endTime": 100, "fingers": FINGERS}])))


def test_labels_by_time_on_the_tolerance_edge_and_of_zero_length(tmp_path):
    def load(t0, t1, tol):
        return load_session(_write(tmp_path, _timed_doc(TIMES, [
            {"startTime": t0, "endTime": t1, "fingers": FINGERS}])), label_tolerance_ms=tol)

    edge = load(-5, 351, 5.0)  # exactly the tolerance outside the first and last samples
    assert (edge.labels[0].start, edge.labels[0].end) == (0, 10)
    for t0, t1 in ((-5.5, 100), (0, 351.5)):
        with pytest.raises(SessionFormatError, match="outside the recording"):
            load(t0, t1, 5.0)
    one = load(150, 150, 0.0)  # a label of zero length on a sample holds that sample
    assert (one.labels[0].start, one.labels[0].end) == (4, 5)
    with pytest.raises(SessionFormatError, match=r"no sample within \[160.0, 180.0\] ms"):
        load(160, 180, 0.0)  # between the samples at 150 and 192 ms
    with pytest.raises(SessionFormatError, match="end 100.0 ms before start 150.0 ms"):
        load(150, 100, 0.0)


def test_index_labels_may_end_at_the_last_sample_but_not_be_empty(tmp_path):
    s = load_session(_write(tmp_path, _doc([{"startIndex": 0, "endIndex": 10,
                                             "fingers": FINGERS}])))
    assert (s.labels[0].start, s.labels[0].end) == (0, 10)
    with pytest.raises(SessionFormatError, match=r"range \[5, 5\) outside the 10 samples"):
        load_session(_write(tmp_path, _doc([{"startIndex": 5, "endIndex": 5,
                                             "fingers": FINGERS}])))


def test_overlapping_labels_that_agree_load_and_a_clash_names_its_first_sample(tmp_path):
    same = _doc([{"startIndex": 0, "endIndex": 5, "fingers": FINGERS},
                 {"startIndex": 3, "endIndex": 7, "fingers": FINGERS}])
    assert (load_session(_write(tmp_path, same)).states[:7] == [0, 1, 0, -1, 1]).all()
    f2 = dict(FINGERS, thumb="flexed")
    doc = _doc([{"startIndex": 4, "endIndex": 8, "fingers": FINGERS},
                {"startIndex": 2, "endIndex": 6, "fingers": f2}])
    with pytest.raises(SessionFormatError, match=r"labels\[1\]: sample 4 already labelled "
                                                 r"differently by labels\[0\]"):
        load_session(_write(tmp_path, doc))


def test_20bit_conversion_refuses_counts_outside_20_bits():
    from physml.magnets.session import mmc5603_counts_to_uT

    assert mmc5603_counts_to_uT([0, (1 << 20) - 1]).tolist() == pytest.approx(
        [-3200.0, 3199.993896484375])
    for bad in (-1, 1 << 20):
        with pytest.raises(ValueError, match=rf"counts must be in \[0, 1048575\], got \[{bad}"):
            mmc5603_counts_to_uT([524288, bad])


def test_samples_must_be_a_non_empty_list_and_imu_channels_are_optional(tmp_path):
    for bad in ([], {"0": {"mx": 1}}):
        doc = _doc([])
        doc["samples"] = bad
        with pytest.raises(SessionFormatError, match="samples: expected a non-empty list"):
            load_session(_write(tmp_path, doc))
    doc = _doc([])
    for smp in doc["samples"]:
        for k in ("ax", "ay", "az", "gx", "gy", "gz"):
            del smp[k]
    s = load_session(_write(tmp_path, doc))
    assert s.accel_g is None and s.gyro_dps is None and s.n_samples == 10
    for smp in doc["samples"]:
        for k in ("mx", "my", "mz"):
            del smp[k]
    with pytest.raises(SessionFormatError, match=r"samples\[0\]\.mx: missing"):
        load_session(_write(tmp_path, doc))


def test_non_finite_calibration_and_a_header_with_samples_are_refused(tmp_path):
    doc = _doc([])
    doc["calibration"]["mag"]["hardIron"] = [1.0, float("nan"), 3.0]
    with pytest.raises(SessionFormatError, match=r"calibration\.mag: non-finite"):
        load_session(_write(tmp_path, doc))
    doc = _doc([])
    doc["calibration"]["mag"]["softIron"][1][1] = float("inf")
    with pytest.raises(SessionFormatError, match=r"calibration\.mag: non-finite"):
        load_session(_write(tmp_path, doc))
    for extra in ({"labels": []}, {"samples": []}):
        head = {"version": "2.1", **extra}
        text = json.dumps(head) + "\n" + json.dumps(_samples(1)[0]) + "\n"
        with pytest.raises(SessionFormatError, match="belong on their own lines"):
            load_session(_write(tmp_path, text, "s.jsonl"))


def test_a_session_built_in_code_starts_unlabelled():
    from physml.magnets.session import Session

    s = Session(mag_raw_uT=np.zeros((4, 3)))
    assert s.states.shape == (4, 5) and (s.states == -1).all()


@pytest.mark.parametrize("shape", ["startIndex", "start_sample"])
def test_written_session_reads_back_whole(tmp_path, shape):
    from physml.magnets.session import session_to_json, write_session

    a = load_session(_write(tmp_path, _timed_doc(TIMES, [
        {"startIndex": 2, "endIndex": 5, "fingers": FINGERS}])))
    doc = session_to_json(a, label_shape=shape)
    assert shape in doc["labels"][0] and doc["version"] == "2.1"
    b = load_session(write_session(a, tmp_path / "back.json", label_shape=shape))
    for field in ("mag_raw_uT", "accel_g", "gyro_dps", "hard_iron_uT", "soft_iron", "time_s"):
        np.testing.assert_allclose(getattr(b, field), getattr(a, field), err_msg=field)
    assert (b.states == a.states).all() and b.device == a.device and b.metadata == a.metadata
    assert b.timestamp == a.timestamp
    a.version, a.timestamp = None, None
    assert session_to_json(a)["version"] == "2.1" and session_to_json(a)["timestamp"] == ""


def test_booleans_are_not_numbers_or_sample_indices(tmp_path):
    doc = _doc([])
    doc["samples"][3]["my"] = True
    with pytest.raises(SessionFormatError, match=r"samples\[3\]\.my: expected a finite number, "
                                                 r"got True"):
        load_session(_write(tmp_path, doc))
    doc = _doc([{"startIndex": True, "endIndex": 5, "fingers": FINGERS}])
    with pytest.raises(SessionFormatError, match=r"labels\[0\]\.startIndex: expected an integer "
                                                 r"sample index, got True"):
        load_session(_write(tmp_path, doc))
    for bad in (True, "100", float("nan")):
        doc = _timed_doc(TIMES, [{"startTime": bad, "endTime": 200, "fingers": FINGERS}])
        with pytest.raises(SessionFormatError, match=r"labels\[0\]\.startTime: expected a finite "
                                                     r"time in ms"):
            load_session(_write(tmp_path, doc))
