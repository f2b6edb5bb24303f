"""vacua.figures: the titles say what the figures show, in each case."""

import numpy as np
import pandas as pd
import pytest

from physml.vacua import figures


def _dist(stable):
    return pd.DataFrame({"stable_minimum": stable, "saddle": [1 - s for s in stable]},
                        index=pd.Index([2, 3, 4], name="n_moduli"))


def test_label_distribution_titles_a_range_a_constant_share_and_a_single_label():
    fig = figures.label_distribution(_dist([0.6, 0.8, 0.9]), "n_moduli", "Fixed: ")
    assert fig.layout.title.text == ("Fixed: stable minimum is the most common label; its share "
                                     "ranges 60.0%–90.0% across 3 values of n")
    assert fig.layout.xaxis.title.text == "number of moduli n"
    assert fig.layout.barmode == "stack"
    assert [t.name for t in fig.data] == ["stable minimum", "saddle"]  # in LABELS order
    assert list(fig.data[1].y) == list(_dist([0.6, 0.8, 0.9]).saddle)
    same = figures.label_distribution(_dist([0.7, 0.7, 0.7]), "n_moduli")
    assert same.layout.title.text == ("stable minimum is the most common label, 70.0% at each of "
                                      "3 values of n")  # not 'ranges 70.0%–70.0%'
    only = figures.label_distribution(_dist([1.0, 1.0, 1.0]), "regime")
    assert only.layout.title.text == ("every potential is labelled stable minimum, at each of 3 "
                                      "values of regime")


def test_time_to_eps_curves_stop_where_a_seed_never_reaches_and_name_the_fastest():
    from physml import stats

    rows = []
    for seed, scale in enumerate([1.0, 2.0, 4.0]):
        for eps in (1e-2, 1e-4, 1e-6):
            rows.append(("newton", seed, eps, scale * 10 * (-np.log10(eps))))
            rows.append(("bfgs", seed, eps, np.nan if (eps == 1e-6 and seed == 1)
                         else scale * 100 * (-np.log10(eps))))
    at_eps = pd.DataFrame(rows, columns=["method", "seed", "eps", "ms_per_vacuum"])
    fig = figures.time_to_eps_curves(at_eps)
    bands = [t for t in fig.data if t.fill == "toself"]
    lines = {t.name: t for t in fig.data if t.fill != "toself"}
    assert len(bands) == 2 and all(b.mode == "lines" for b in bands)
    assert list(lines["bfgs"].x) == [1e-2, 1e-4]  # stops before the eps one seed never reached
    assert list(lines["newton"].x) == [1e-2, 1e-4, 1e-6]
    gm = stats.geometric_mean_ci([20 * 6, 40 * 6, 10 * 6])  # newton at 1e-6: 10, 20, 40 x 6
    assert lines["newton"].y[-1] == pytest.approx(gm.mean)
    assert fig.layout.title.text == ("1 of 2 solvers reach ε = 1e-06 on every seed; fastest "
                                     f"there: newton ({gm.mean:.3g} ms per vacuum)")


def test_solver_cost_by_n_says_for_which_methods_the_cost_grew_and_names_the_cheapest():
    def table(b_last):
        return pd.DataFrame({"method": ["a", "a", "b", "b"], "n": [2, 16, 16, 2],
                             "wall_ms_per_potential": [1.0, 5.0, b_last, 3.0]})
    fig = figures.solver_cost_by_n(table(4.0))  # b: 3 ms at n = 2, 4 ms at n = 16
    assert fig.layout.title.text == ("Wall time per potential grows with n for every method; "
                                     "at n = 16 the cheapest is b")
    assert list(fig.data[1].x) == [2, 16]  # drawn in n order whatever the row order
    assert fig.layout.xaxis.title.text == "number of moduli n"
    assert figures.solver_cost_by_n(table(2.0)).layout.title.text.startswith(
        "Wall time per potential grows with n for a only; at n = 16 the cheapest is b")
    falling = table(2.0).assign(wall_ms_per_potential=[5.0, 1.0, 2.0, 3.0])
    assert "does not grow with n for any method; at n = 16 the cheapest is a" in \
        figures.solver_cost_by_n(falling).layout.title.text
    one = table(4.0)[table(4.0).n == 16]
    assert figures.solver_cost_by_n(one).layout.title.text.startswith(
        "Wall time per potential at one n only")
    flat = pd.DataFrame({"method": ["a"] * 3 + ["b"] * 3, "n": [2, 8, 16] * 2,
                         "wall_ms_per_potential": [1.0, 9.0, 1.0, 1.0, 2.0, 3.0]})
    assert figures.solver_cost_by_n(flat).layout.title.text.startswith(  # a ends where it began
        "Wall time per potential grows with n for b only")


def test_throughput_by_n_says_whether_the_rate_fell_and_up_to_which_n_it_meets_the_target():
    timing = pd.DataFrame({"n_moduli": [24, 2, 8], "labels_per_s": [2500.0, 9000.0, 4000.0],
                           "potentials": [10, 10, 10]})
    fig = figures.throughput_by_n(timing, target=3000.0)
    assert fig.layout.title.text == "Batched Newton throughput falls with n: ≥ 3,000/s up to n = 8"
    assert fig.layout.xaxis.title.text == "number of moduli n"
    rising = timing.assign(labels_per_s=[9000.0, 2500.0, 4000.0])
    assert figures.throughput_by_n(rising).layout.title.text == (
        "Batched Newton throughput does not fall with n: ≥ 3,000/s at n = 8, 24 only")
    slow = timing.assign(labels_per_s=[1.0, 2.0, 3.0])
    assert figures.throughput_by_n(slow).layout.title.text.endswith("below 3,000/s at every n")
    one = timing.iloc[:1]
    assert figures.throughput_by_n(one).layout.title.text.startswith(
        "Batched Newton throughput at one n:")
    dip = timing.assign(labels_per_s=[5000.0, 3500.0, 1000.0])  # n = 24, 2, 8: a dip at 8
    assert figures.throughput_by_n(dip).layout.title.text.startswith(
        "Batched Newton throughput does not fall with n")  # first (n = 2) against last (n = 24)
    two = pd.DataFrame({"n_moduli": [2, 4], "labels_per_s": [3000.0, 3000.0], "potentials": [1, 1]})
    assert figures.throughput_by_n(two).layout.title.text == (  # the target met exactly
        "Batched Newton throughput does not fall with n: ≥ 3,000/s up to n = 4")


def test_derivative_and_census_titles_state_the_measured_figures():
    h = np.array([1e-2, 1e-5, 1e-8])
    curves = {"random point": pd.DataFrame({"h": h, "grad_rel_err": [1e-4, 3e-11, 1e-7],
                                            "hess_rel_err": [1e-4, 1e-6, 1e-1]})}
    assert figures.fd_error_vs_step(curves).layout.title.text == (
        "Central differences against the analytic derivatives, smallest gradient error "
        "random point: 3.0e-11 (h = 1e-05)")
    defect = pd.DataFrame({"point": ["random", "near_kink", "near_kink", "near_kink"],
                           "ours_rel_err": [1e-15, 2e-14, 1e-15, 0.0],
                           "source_rel_err": [0.0, 0.9, 1.0, 0.5]})
    assert figures.source_defect(defect).layout.title.text == (
        "Hessian against autodiff: the source's δ² version is off by a median 0.9 near the "
        "kinks, ours by at most 2.0e-14 anywhere")
    assert figures.geometry_counts({3: 1, 4: 3, 5: 9}).layout.title.text == (
        "Toric surfaces with every D² ≥ −12 per number of rays: ×3.0 from 4 to 5 rays")
    assert figures.geometry_counts({3: 1}).layout.title.text.endswith(": 1 at 3 rays")
