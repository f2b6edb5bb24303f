"""vacua.figures.label_distribution: the title says what the bars show, in each case."""

import pandas as pd

from physml.vacua import figures


def _dist(stable):
    return pd.DataFrame({"stable_minimum": stable, "saddle": [1 - s for s in stable]},
                        index=pd.Index([2, 3, 4], name="n_moduli"))


def test_label_distribution_titles_a_range_a_constant_share_and_a_single_label():
    fig = figures.label_distribution(_dist([0.6, 0.8, 0.9]), "n_moduli", "Fixed: ")
    assert fig.layout.title.text == ("Fixed: stable_minimum is the most common label; its share "
                                     "ranges 60.0%–90.0% across 3 values of n_moduli")
    assert fig.layout.barmode == "stack"
    assert [t.name for t in fig.data] == ["stable_minimum", "saddle"]  # in LABELS order
    assert list(fig.data[1].y) == list(_dist([0.6, 0.8, 0.9]).saddle)
    same = figures.label_distribution(_dist([0.7, 0.7, 0.7]), "n_moduli")
    assert same.layout.title.text == ("stable_minimum is the most common label, 70.0% at each of "
                                      "3 values of n_moduli")  # not 'ranges 70.0%–70.0%'
    only = figures.label_distribution(_dist([1.0, 1.0, 1.0]), "regime")
    assert only.layout.title.text == ("every potential is stable_minimum, at each of 3 values "
                                      "of regime")
