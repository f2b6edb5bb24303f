"""G-code tokenizer, program recovery and command classes (issue 11)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest

from physml.cnc import data, tokens


@pytest.fixture(scope="module")
def shipped():
    return data.load_shipped()


@pytest.fixture(scope="module")
def programs(shipped):
    return tokens.recover_programs(shipped.rows)


def test_round_trip_on_every_gcode_string_in_the_data(shipped):
    strings = shipped.rows["gcode_string"].unique()
    assert len(strings) > 2000
    for s in strings:
        assert tokens.detokenize(tokens.tokenize(s)) == s


def test_tokens_keep_number_text_exactly():
    # "Z0." and "Z0" are different texts; the tokenizer must not normalise either
    assert tokens.tokenize("X3.2871 Z0.") == ["X", "3.2871", "Z", "0."]
    assert tokens.detokenize(["X", "3.2871", "Z", "0"]) == "X3.2871 Z0"
    assert tokens.token_types(tokens.tokenize("G2 X-0.2 Y0.1 R0.083")) == [
        "command", "axis", "value", "axis", "value", "axis", "value"]


@pytest.mark.parametrize(
    "bad", ["", " G0 X1.", "G0  X1.", "G0 X1. ", "G0 X", "Q1.2.3", "W1", "x1."])
def test_malformed_lines_raise_naming_the_line(bad):
    with pytest.raises(ValueError):
        tokens.tokenize(bad)


def test_tokenize_refuses_an_empty_or_non_string_line_by_name():
    for bad in ("", None, 3):
        with pytest.raises(ValueError, match="must be a non-empty string"):
            tokens.tokenize(bad)


def test_token_type_needs_a_command_letter_with_its_number():
    assert [tokens.token_type(t) for t in ("M3", "T1", "G00", "X", "-0.5", "<eos>")] == [
        "command", "command", "command", "axis", "value", "special"]
    # a bare command letter, an address fused with its value, an unknown letter
    for bad in ("G", "X1.", "W"):
        with pytest.raises(ValueError, match="not a G-code token"):
            tokens.token_type(bad)


def test_detokenize_rejects_a_value_without_its_address():
    with pytest.raises(ValueError, match="grammar"):
        tokens.detokenize(["G1", "0.5"])


def test_detokenize_rejects_an_address_without_its_value_at_the_end():
    # the last token is an address: the look-ahead must stop at the end, with the named error
    with pytest.raises(ValueError, match=r"grammar at 1 \('X'\)"):
        tokens.detokenize(["G1", "X"])
    assert tokens.detokenize(["G1", "X", "1."]) == "G1 X1."


def test_vocabulary_encode_decode():
    v = tokens.Vocabulary.build(["G1 Z0.025 F7.3", "X1. Y2."])
    ids = v.encode("G1 Z0.025 F7.3", max_len=10)
    assert ids[0] == tokens.BOS and tokens.EOS in ids and ids[-1] == tokens.PAD
    assert v.decode(ids) == ["G1", "Z", "0.025", "F", "7.3"]
    assert v.decode(v.encode("X9.99")) == ["X", "<unk>"]


def test_encode_pads_to_exactly_max_len_and_accepts_a_line_that_fills_it():
    v = tokens.Vocabulary.build(["G1 Z0.025 F7.3"])
    full = v.encode("G1 Z0.025 F7.3")  # <bos> 5 tokens <eos>
    assert len(full) == 7
    assert v.encode("G1 Z0.025 F7.3", max_len=7).tolist() == full.tolist()
    padded = v.encode("G1 Z0.025 F7.3", max_len=12)
    assert padded.shape == (12,) and padded[7:].tolist() == [tokens.PAD] * 5
    with pytest.raises(ValueError, match="needs 7 tokens > max_len 6"):
        v.encode("G1 Z0.025 F7.3", max_len=6)


def test_token_accuracy_counts_positions_of_the_true_line():
    assert tokens.token_accuracy(["X", "1."], ["X", "1.", "Y", "2."]) == 0.5
    assert tokens.token_accuracy(["X", "1.", "Y", "2.", "Z", "3."], ["X", "1."]) == 1.0
    s = tokens.line_token_scores(["X1. Y3.", "G0 Z1."], ["X1. Y2.", "G0 Z1."])
    assert s["hit"].tolist() == [3, 3] and s["exact"].tolist() == [False, True]
    assert s["hit_value"].tolist() == [1, 1]


def test_line_token_scores_count_missing_and_extra_tokens_and_each_type():
    # a prediction shorter than the true line: its missing tokens are misses, not hits
    s = tokens.line_token_scores(["G1 X1.", "G1 X1. Y2. Z3.", ""],
                                 ["G1 X1. Y2.", "G1 X1.", "G0 Z1."])
    assert s["n"].tolist() == [5, 3, 3]
    assert s["hit"].tolist() == [3, 3, 0]
    assert s["n_command"].tolist() == [1, 1, 1] and s["hit_command"].tolist() == [1, 1, 0]
    assert s["n_axis"].tolist() == [2, 1, 1] and s["hit_axis"].tolist() == [1, 1, 0]
    assert s["n_value"].tolist() == [2, 1, 1] and s["hit_value"].tolist() == [1, 1, 0]
    assert s["exact"].tolist() == [False, False, False]
    with pytest.raises(ValueError, match="2 predictions for 1 lines"):
        tokens.line_token_scores(["X1.", "X2."], ["X1."])


def test_six_programs_recovered_from_gcode_sequences_match_the_file_kinds(programs):
    # independent reference: the file names (which the recovery never reads)
    assert len(programs) == 6
    for p in programs:
        kinds = {f.rsplit("_", 1)[0].removeprefix("damage").replace("150025", "") for f in p.files}
        assert len(kinds) == 1, (p.name, kinds)
        campaigns = {("c2" if ("150025" in f or f.startswith("damage")) else "c1") for f in p.files}
        assert len(campaigns) == 1, (p.name, campaigns)
    assert sorted(len(p.files) for p in programs) == [17, 17, 17, 21, 21, 21]


def test_recovery_splits_programs_that_disagree_on_a_line():
    rows = pd.DataFrame({
        "file": ["a"] * 3 + ["b"] * 3 + ["c"] * 3,
        "gcode_line": [1, 2, 3] * 3,
        "gcode_string": ["G0 X1.", "X2.", "X3."] * 2 + ["G0 X1.", "X2.", "X4."],
    })
    progs = tokens.recover_programs(rows)
    assert [p.files for p in progs] == [("a", "b"), ("c",)]
    assert [p.name for p in progs] == ["P1", "P2"]


def test_recovery_joins_at_exactly_the_minimum_overlap_and_not_below():
    # a and b share 3 of b's 10 lines (0.3 of the smaller file): joined at min_overlap 0.3;
    # c shares 2 of its 10 with a (0.2): a program of its own
    lines_a = list(range(1, 11))
    lines_b = [8, 9, 10] + list(range(21, 28))
    lines_c = [1, 2] + list(range(31, 39))
    rows = pd.DataFrame({
        "file": ["a"] * 10 + ["b"] * 10 + ["c"] * 10,
        "gcode_line": lines_a + lines_b + lines_c,
        "gcode_string": [f"X{n}." for n in lines_a + lines_b + lines_c]})
    progs = tokens.recover_programs(rows, min_overlap=0.3)
    assert [p.files for p in progs] == [("a", "b"), ("c",)]
    assert len(progs[0].lines) == 17


def test_a_file_with_two_texts_for_one_line_is_refused_by_name():
    rows = pd.DataFrame({"file": ["a", "a", "a"], "gcode_line": [1, 2, 2],
                         "gcode_string": ["G0 X1.", "X2.", "X3."]})
    with pytest.raises(ValueError, match="file a: gcode_line 2 has two texts"):
        tokens.recover_programs(rows)


def test_modal_fill_follows_line_order_not_row_order():
    prog = [(10, "G0 X1."), (11, "Z0.6"), (12, "G1 Z0.1 F7.3"), (13, "X2."),
            (14, "G3 X1. Y1. R0.5"), (15, "X0. Y2. R0.5"), (17, "X3. Y3."), (20, "M30")]
    m = tokens.modal_commands(list(reversed(prog)))
    assert m == {10: "G0", 11: "G0", 12: "G1", 13: "G1", 14: "G3", 15: "G3",
                 17: "G1", 20: None}


def test_command_classes_agree_with_the_controller_motion_mode(shipped, programs):
    # independent reference: the controller's own modal state `momo` (0..3 = G0..G3)
    momo = shipped.rows["momo"].to_numpy()
    ref_all = np.array(["G0", "G1", "G2", "G3", ""], dtype=object)[
        np.where(np.isin(momo, [0, 1, 2, 3]), np.nan_to_num(momo, nan=4), 4).astype(int)]
    text = tokens.command_classes(shipped.rows, programs, reports=False)
    c = tokens.command_classes(shipped.rows, programs)
    moving = (c != "none") & (ref_all != "")
    ref = ref_all[moving]
    # the text alone misses a G0 -> G1 switch on a line no recording reported (P2)
    pairs_text = Counter(zip(text[moving], ref, strict=True))
    assert pairs_text[("G0", "G1")] > 3000 and (text[moving] == ref).mean() < 0.95
    # the labels take the reported mode there: they agree with momo almost everywhere
    assert (c[moving] == ref).mean() > 0.999
    pairs = Counter(zip(c[moving], ref, strict=True))
    assert pairs[("G2", "G2")] > 1000 and pairs[("G3", "G3")] > 2000
    assert pairs[("G0", "G1")] < 10


def test_reported_modes_fill_lines_without_a_motion_word_and_text_wins():
    rows = pd.DataFrame({"file": ["a"] * 5, "gcode_line": [1, 3, 4, 5, 6],
                         "gcode_string": ["G0 X1.", "X2.", "X3.", "G0 X0.", "M30"],
                         "momo": [0.0, 1.0, np.nan, 1.0, 0.0]})
    progs = tokens.recover_programs(rows)
    # line 3 reports G1 (the switch sat on unreported line 2); line 4 carries it; line 5's
    # explicit G0 wins over its report; line 6 moves nothing
    assert list(tokens.command_classes(rows, progs)) == ["G0", "G1", "G1", "G0", "none"]
    assert list(tokens.command_classes(rows, progs, reports=False)) == ["G0", "G0", "G0", "G0",
                                                                         "none"]
    assert tokens.reported_modes(rows) == {1: "G0", 3: "G1", 5: "G1", 6: "G0"}
    with pytest.raises(ValueError, match="momo"):
        tokens.command_classes(rows.drop(columns="momo"), progs)




def test_reported_modes_take_the_most_frequent_code_and_the_lower_one_on_a_tie():
    rows = pd.DataFrame({"gcode_line": [4, 4, 4, 7, 7, 7, 7],
                         "momo": [0.0, 1.0, 1.0, 2.0, 3.0, 3.0, 2.0]})
    assert tokens.reported_modes(rows) == {4: "G1", 7: "G2"}
