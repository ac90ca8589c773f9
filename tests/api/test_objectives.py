"""Ready-made objectives against hand-computed values and their gradients."""

import math

import pytest
import torch
from torch.autograd import gradcheck

from invdesign.objectives import (
    LogRatio,
    Maximize,
    Objective,
    ResponseValue,
    Smoothness,
    TargetCurve,
    TotalDose,
    WeightedSum,
    WindowAverage,
    WorstCase,
    pick,
    window_mask,
)

D = torch.float64


def t(x, grad=False):
    return torch.tensor(x, dtype=D, requires_grad=grad)


def test_pick_names_the_problem():
    assert torch.equal(pick({"T": t([1.0])}, "T"), t([1.0]))
    with pytest.raises(KeyError, match=r"target_curve: the response has no key 'I'; keys: \['T'\]"):
        pick({"T": t([1.0])}, "I", "target_curve")
    with pytest.raises(KeyError, match="the response is a dict with keys"):
        pick({"T": t([1.0])}, None)
    with pytest.raises(TypeError, match="key 'T' given but the response is a Tensor"):
        pick(t([1.0]), "T")


def test_window_mask():
    x = t([0.0, 0.5, 1.0, 1.5, 2.0])
    assert window_mask(x, (0.5, 1.0)).tolist() == [False, True, True, False, False]
    assert window_mask(x, [(0.0, 0.0), (1.5, 3.0)]).tolist() == [True, False, False, True, True]


def test_target_curve_mse_and_relative_on_windows():
    target = t([1.0, 2.0, 4.0, 0.0])
    curve = t([1.5, 2.0, 3.0, 0.1])
    obj = TargetCurve(target, key="T")
    assert float(obj({"T": curve}, {})) == pytest.approx((0.25 + 0 + 1 + 0.01) / 4)
    windowed = TargetCurve(target, key="T", x_grid=[0.0, 1.0, 2.0, 3.0], windows=(0.5, 2.5))
    assert float(windowed({"T": curve}, {})) == pytest.approx((0 + 1) / 2)
    masked = TargetCurve(target, mask=[True, False, True, False], mode="relative")
    assert float(masked(curve, {})) == pytest.approx((0.5**2 + 0.25**2) / 2)
    # relative deviation at a target zero is divided by the floor (1e-3 of the peak by default)
    rel = TargetCurve(target, mode="relative")
    assert float(rel(curve, {})) == pytest.approx((0.25 + 0 + 0.0625 + (0.1 / 4e-3) ** 2) / 4)
    assert rel.metrics(curve, {}) == {"target_curve_full": pytest.approx(float(rel(curve, {})))}


def test_target_curve_gradient():
    target = t([1.0, 2.0, 4.0, 0.5])
    for mode in ("mse", "relative"):
        obj = TargetCurve(target, mode=mode, mask=[True, True, False, True])
        assert gradcheck(lambda c: obj(c, {}), (t([0.3, 1.0, 2.0, 0.1], grad=True),))


def test_target_curve_minibatch_is_seeded_and_unbiased():
    target = torch.zeros(20, dtype=D)
    curve = torch.arange(20, dtype=D)
    a, b = TargetCurve(target, batch_size=5, seed=3), TargetCurve(target, batch_size=5, seed=3)
    draws_a = [float(a(curve.clone(), {})) for _ in range(400)]  # a new response each time
    assert draws_a[:10] == [float(b(curve.clone(), {})) for _ in range(10)]
    assert len(set(draws_a[:10])) > 1
    full = float((curve**2).mean())
    assert abs(sum(draws_a) / len(draws_a) - full) < 0.05 * full
    assert a.metrics(curve, {})["target_curve_full"] == pytest.approx(full)


def test_wrapper_metrics_do_not_shift_the_minibatch_stream():
    target, curves = torch.zeros(20, dtype=D), [torch.arange(20, dtype=D) * k for k in (1.0, 2.0, 3.0)]
    plain = TargetCurve(target, batch_size=4, seed=5)
    wrapped = WeightedSum([(1.0, TargetCurve(target, batch_size=4, seed=5))])
    for c in curves:
        value = float(wrapped(c, {}))
        assert wrapped.metrics(c, {})["term0.target_curve"] == value  # the same draw
        assert value == float(plain(c, {}))


def test_target_curve_errors():
    with pytest.raises(ValueError, match="target_curve: the mask / windows select no points"):
        TargetCurve(t([1.0, 2.0]), x_grid=[0.0, 1.0], windows=(5.0, 6.0))
    with pytest.raises(ValueError, match=r"target_curve: mask has shape \(3,\); expected \(2,\)"):
        TargetCurve(t([1.0, 2.0]), mask=[True, True, False])
    with pytest.raises(ValueError, match="mode must be"):
        TargetCurve(t([1.0, 2.0]), mode="mae")
    with pytest.raises(ValueError, match="batch_size must be in"):
        TargetCurve(t([1.0, 2.0]), batch_size=3)
    with pytest.raises(ValueError, match=r"curve 'T' has shape \(3,\); the target has \(2,\)"):
        TargetCurve(t([1.0, 2.0]), key="T")({"T": t([1.0, 2.0, 3.0])}, {})


def test_window_average():
    curve = t([1.0, 2.0, 3.0, 4.0])
    assert float(WindowAverage()(curve, {})) == 2.5
    obj = WindowAverage("T", x_grid=[-1.0, 0.0, 1.0, 2.0], windows=(-0.5, 1.0))
    assert float(obj({"T": curve}, {})) == 2.5
    assert float(WindowAverage(mask=[True, False, False, True])(curve, {})) == 2.5
    assert gradcheck(lambda c: obj({"T": c}, {}), (t([1.0, 2.0, 3.0, 4.0], grad=True),))


def test_log_ratio_maximizes_by_default():
    resp = {"Ion": t(1e-4), "Ioff": t(-1e-9)}  # the sign of a current does not matter
    obj = LogRatio("Ion", "Ioff")
    assert float(obj(resp, {})) == pytest.approx(-5.0)
    assert float(LogRatio("Ion", "Ioff", maximize=False)(resp, {})) == pytest.approx(5.0)
    assert obj.metrics(resp, {}) == {"log10_ratio": pytest.approx(5.0), "maximize": 1.0}
    from_callables = LogRatio(lambda r, p: r["Ion"] * 10, lambda r, p: r["Ioff"])
    assert float(from_callables(resp, {})) == pytest.approx(-6.0)
    assert gradcheck(lambda a, b: obj({"Ion": a, "Ioff": b}, {}), (t(2e-3, grad=True), t(3e-2, grad=True)))


def test_maximize_negates_and_says_so():
    obj = Maximize(WindowAverage())
    curve = t([1.0, 3.0])
    assert float(obj(curve, {})) == -2.0
    assert obj.metrics(curve, {}) == {"maximize": 1.0, "maximized_value": 2.0}
    assert obj.name == "maximize_window_average"


def test_weighted_sum_and_its_metrics():
    obj = WeightedSum([(2.0, ResponseValue("a")), (-0.5, TargetCurve(t([0.0, 0.0]), key="c"))])
    resp = {"a": t(3.0), "c": t([1.0, 3.0])}
    assert float(obj(resp, {})) == pytest.approx(6.0 - 0.5 * 5.0)
    assert obj.metrics(resp, {}) == {"term0.response_value": 3.0, "term1.target_curve": 5.0,
                                     "term1.target_curve_full": 5.0}
    with pytest.raises(ValueError, match="at least one"):
        WeightedSum([])


def test_worst_case_plain_and_smooth():
    losses = t([0.2, 1.5, 0.7])
    plain = WorstCase(key="loss")
    assert float(plain({"loss": losses}, {})) == 1.5
    assert plain.metrics({"loss": losses}, {}) == {"worst_case_index": 1.0, "worst_case_max": 1.5}
    smooth = WorstCase(key="loss", smooth=0.1)
    s = float(smooth({"loss": losses}, {}))
    assert 1.5 <= s <= 1.5 + 0.1 * math.log(3)
    assert s == pytest.approx(0.1 * math.log(sum(math.exp(v / 0.1) for v in losses.tolist())))
    assert gradcheck(lambda x: smooth({"loss": x}, {}), (t([0.2, 1.5, 1.45], grad=True),))
    terms = WorstCase([ResponseValue("a"), ResponseValue("b")])
    assert float(terms({"a": t(1.0), "b": t(-2.0)}, {})) == 1.0
    assert terms.values({"a": t(1.0), "b": t(-2.0)}, {}).tolist() == [1.0, -2.0]
    with pytest.raises(ValueError, match="either terms or key"):
        WorstCase()


def test_smoothness_and_total_dose():
    x = t([0.0, 1.0, 4.0, 9.0])
    assert float(Smoothness("x")(None, {"x": x})) == 1 + 9 + 25
    assert float(Smoothness("x", order=2)(None, {"x": x})) == 2 * 2**2
    assert gradcheck(lambda v: Smoothness("x", order=2)(None, {"x": v}), (t([0.3, 1.0, -2.0, 0.5], grad=True),))
    with pytest.raises(ValueError, match="block 'x' of shape \\(4,\\) is too short"):
        Smoothness("x", order=4)(None, {"x": x})
    assert float(TotalDose("x")(None, {"x": x})) == 14.0
    assert float(TotalDose("x", weights=[1.0, 0.0, 0.5, 0.0])(None, {"x": x})) == 2.0
    with pytest.raises(KeyError, match="total_dose \\(params\\): the response has no key 'y'"):
        TotalDose("y")(None, {"x": x})


def test_response_value_requires_a_scalar():
    assert float(ResponseValue()(t(2.5), {})) == 2.5
    with pytest.raises(ValueError, match=r"response_value: response 'T' has shape \(2,\)"):
        ResponseValue("T")({"T": t([1.0, 2.0])}, {})


def test_a_custom_objective_is_small():
    class PeakTransmission(Objective):
        def __call__(self, response, params):
            return -response["T"].max()

    assert float(PeakTransmission()({"T": t([0.1, 0.9])}, {})) == -0.9
    assert PeakTransmission().metrics({}, {}) == {}
