import pytest

from skhead2toe.transfer import TRANSFER_VARIANTS, summarize_results


def _fake_rows():
    rows = [dict(seed=s, variant="baseB", n=0, task="B", accuracy=0.9) for s in (0, 1)]
    for s, shift in ((0, 0.0), (1, 0.02)):
        for variant in TRANSFER_VARIANTS:
            rows += [
                dict(seed=s, variant=variant, n=n, task="B", accuracy=0.8 + shift)
                for n in (1, 2, 3)
            ]
    return rows


def test_summarize_results():
    summary = summarize_results(_fake_rows())
    anb = [s for s in summary if s["variant"] == "AnB"]
    assert [s["n"] for s in anb] == [1, 2, 3]
    assert anb[0]["n_seeds"] == 2
    assert anb[0]["mean"] == pytest.approx(0.81)
    assert anb[0]["std"] == pytest.approx(0.01)
    assert (anb[0]["min"], anb[0]["max"]) == pytest.approx((0.8, 0.82))
    with pytest.raises(ValueError, match="results must be"):
        summarize_results([])
    with pytest.raises(ValueError, match="results must be"):
        summarize_results([dict(variant="AnB")])


def test_summarize_results_paired_with_a_baseline():
    rows = [
        dict(seed=0, variant="baseA", n=0, task="A", accuracy=0.7),
        dict(seed=0, variant="baseB", n=0, task="B", accuracy=0.9),
        dict(seed=0, variant="AnB", n=1, task="B", accuracy=0.8),
        dict(seed=1, variant="baseB", n=0, task="B", accuracy=0.6),
        dict(seed=1, variant="AnB", n=1, task="B", accuracy=0.58),
    ]
    summary = {s["variant"]: s for s in summarize_results(rows, baseline="baseB")}
    assert set(summary) == {"baseB", "AnB"}  # baseA is on another task
    assert summary["AnB"]["mean"] == pytest.approx(-0.06)
    assert summary["AnB"]["std"] == pytest.approx(0.04)
    assert summary["baseB"]["mean"] == 0
    with pytest.raises(ValueError, match="baseline='baseX' names no variant"):
        summarize_results(rows, baseline="baseX")
    with pytest.raises(ValueError, match="more than one baseline row"):
        summarize_results(rows + rows[1:2], baseline="baseB")
    with pytest.raises(ValueError, match=r"no baseline row for seed\(s\) \[2\]"):
        summarize_results([*rows, dict(rows[2], seed=2)], baseline="baseB")
