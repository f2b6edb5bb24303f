"""The embedded Runge–Kutta pairs against Butcher's order conditions (independent of any field).

Accuracy tests of the adaptive integrators cannot pin their coefficients: a wrong tableau entry
inflates the error estimate, the step control takes smaller steps, and the answer stays within
tolerance. Here each tableau, exactly as the kernels read it, must satisfy every order
condition sum_i b_i Phi_i(t) = 1 / gamma(t) over the rooted trees t up to its order (17 trees up
to order 5), its embedded solution must satisfy those of one order less and violate at least
one of the next (else the error estimate measures nothing), and c_i = sum_j a_ij.
"""

from __future__ import annotations

import importlib
import math
from functools import cache

import numpy as np
import pytest

from physml.tracks import rk4_compiled as K

P = importlib.import_module("physml.tracks.propagate")  # shadowed by the function


@cache
def _trees(order: int) -> tuple:
    """Rooted trees with ``order`` nodes, each a sorted tuple of its children's trees."""
    if order == 1:
        return ((),)
    out = set()

    def grow(remaining, smallest, children):
        if remaining == 0:
            out.add(tuple(sorted(children)))
            return
        for k in range(1, remaining + 1):
            for t in _trees(k):
                if (k, t) >= smallest:
                    grow(remaining - k, (k, t), children + [t])

    grow(order - 1, (0, ()), [])
    return tuple(sorted(out))


def _size(t) -> int:
    return 1 + sum(_size(c) for c in t)


def _gamma(t) -> int:
    return _size(t) * math.prod(_gamma(c) for c in t)


def _phi(A: np.ndarray, t) -> np.ndarray:
    """Per stage i: the product over the children c of t of sum_j a_ij Phi_j(c)."""
    out = np.ones(len(A))
    for c in t:
        out = out * (A @ _phi(A, c))
    return out


def _order_defects(A, b, order):
    return {(k, t): float(b @ _phi(A, t) - 1.0 / _gamma(t))
            for k in range(1, order + 1) for t in _trees(k)}


def test_tree_counts_are_the_known_ones():
    assert [len(_trees(k)) for k in range(1, 7)] == [1, 1, 2, 4, 9, 20]  # OEIS A000081


def _cash_karp():
    return P._CK_A_ARR, P._CK_C_ARR, P._CK_B5_ARR, P._CK_B4_ARR


def _dormand_prince():
    """The 7-stage FSAL tableau as the compiled kernel reads it: stage s uses row s - 1 of
    ``_A``, its z offset ``_C[s]``; row 5 is b5; the error weights are b5 - b4."""
    A = np.zeros((7, 7))
    A[1:, :6] = K._A
    b5 = A[6].copy()
    return A, K._C, b5, b5 - K._E


@pytest.mark.parametrize("tableau", [_cash_karp, _dormand_prince], ids=["cash_karp", "dopri5"])
def test_pair_meets_the_order_conditions_of_orders_5_and_4(tableau):
    A, c, b5, b4 = tableau()
    np.testing.assert_allclose(A.sum(1), c, rtol=0, atol=1e-14)  # c_i = sum_j a_ij
    assert np.all(np.triu(A) == 0)  # explicit
    for name, b, order in (("b5", b5, 5), ("b4", b4, 4)):
        defects = _order_defects(A, b, order)
        bad = {t: d for t, d in defects.items() if abs(d) > 1e-13}
        assert not bad, (name, bad)
    fifth = _order_defects(A, b4, 5)
    assert max(abs(d) for (k, _), d in fifth.items() if k == 5) > 1e-5  # b4 is not 5th order


def test_dopri5_is_first_same_as_last():
    # the 7th stage is evaluated at the 5th-order solution, at the end of the step
    A, c, b5, _ = _dormand_prince()
    np.testing.assert_array_equal(A[6], b5)
    assert c[6] == 1.0 and b5[6] == 0.0
