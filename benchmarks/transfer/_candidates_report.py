"""Selection rules and sub-grids of the default head, evaluated on the suite.

Reads the records of ``run_candidates.py`` (every candidate's CV scores and test
predictions, per task and seed) and the suite's Linear and All layers + L2
records, and prints one row per (grid, rule): what the default head would score
with that grid and that rule, across the whole suite, with no new fit. The
"hindsight" rows choose each cell's best candidate by its *test* accuracy: an
upper bound on what any rule can reach on that candidate set, not a method.

Usage::

    python benchmarks/transfer/_candidates_report.py [--name wide] [--json out.json]
"""

import argparse
import json
import math
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _suite as S  # noqa: E402
import numpy as np  # noqa: E402

from skhead2toe.experiments import paired_comparison  # noqa: E402

ALL_RIDGES = (1e-3, 1e-4, 1e-5, 1e-6, 1e-7)
#: Sub-grids of the wide grid, by name: the ridges each allows.
GRIDS = {
    "ridges 1e-3..1e-5 (default)": (1e-3, 1e-4, 1e-5),
    "ridges 1e-3..1e-6": (1e-3, 1e-4, 1e-5, 1e-6),
    "ridges 1e-3..1e-7": ALL_RIDGES,
    "ridges 1e-4..1e-6": (1e-4, 1e-5, 1e-6),
    "ridges 1e-4..1e-7": (1e-4, 1e-5, 1e-6, 1e-7),
    "ridges 1e-5..1e-7": (1e-5, 1e-6, 1e-7),
}


def _scores(table):
    return np.asarray(table["splits"], dtype=float)  # (folds, candidates)


def rule_best(table, allowed):
    """Best mean CV score; ties to the first in table order (the estimator's)."""
    mean = np.where(allowed, _scores(table).mean(0), -np.inf)
    return int(np.argmax(mean))


def rule_se(fraction):
    """Fewest features within ``fraction`` standard errors of the best."""

    def rule(table, allowed):
        scores = _scores(table)
        mean = np.where(allowed, scores.mean(0), -np.inf)
        best = int(np.argmax(mean))
        se = scores[:, best].std(ddof=1) / math.sqrt(scores.shape[0])
        near = np.flatnonzero(mean >= mean[best] - fraction * se)
        nf = np.asarray(table["n_features"], dtype=float)
        return int(min(near, key=lambda n: (nf[n], -mean[n], n)))

    rule.__name__ = f"{fraction:g}se"
    return rule


def rule_baseline_margin(margin):
    """The best baseline unless a Head2Toe candidate beats it by ``margin`` (mean)."""

    def rule(table, allowed):
        mean = np.where(allowed, _scores(table).mean(0), -np.inf)
        kinds = np.asarray(table["candidate"])
        base = np.where(kinds == "top features", -np.inf, mean)
        top = np.where(kinds == "top features", mean, -np.inf)
        b, t = int(np.argmax(base)), int(np.argmax(top))
        return t if top[t] > base[b] + margin else b

    rule.__name__ = f"baseline unless +{margin:g}"
    return rule


RULES = {
    "best": rule_best,
    "0.5se": rule_se(0.5),
    "1se": rule_se(1.0),
    "baseline unless +0.002": rule_baseline_margin(0.002),
    "baseline unless +0.005": rule_baseline_margin(0.005),
}


def load(cache, name, tasks, seeds):
    """``{(task, seed): (candidate record, y_test, {method: predictions})}``."""
    out = {}
    for task in tasks:
        for seed in seeds:
            path = (
                Path(cache) / "candidates" / name / S._slug(task) / f"seed{seed}.json"
            )
            rec = S.read_json(path)
            split = S.read_json(
                Path(cache) / "results" / S._slug(task) / f"seed{seed}" / "split.json"
            )
            if rec is None or split is None:
                continue
            base = {}
            for method in (S.LINEAR, S.ALL_L2):
                r = S.read_json(S.record_path(cache, task, seed, method))
                if r is not None:
                    base[method] = S.decode_labels(r["predictions"])
            out[task, seed] = (rec, S.decode_labels(split["y_test"]), base)
    return out


def allowed_mask(table, ridges):
    l2 = np.asarray([np.nan if v is None else v for v in table["refit_l2"]], float)
    return np.isin(np.round(np.log10(l2), 6), np.round(np.log10(ridges), 6))


def evaluate(cells, choose):
    """Per-task summary of the candidate ``choose(rec, allowed) -> index`` picks."""
    per_task = {}
    for (task, _seed), (rec, y, base) in cells.items():
        n = choose(rec)
        pred = S.decode_labels(rec["predictions"][n])
        t = per_task.setdefault(task, {"y": [], "pred": [], "base": {}, "frac": []})
        t["y"].append(y)
        t["pred"].append(pred)
        t["frac"].append(rec["table"]["n_features_full"][n] / rec["n_features_total"])
        for m, p in base.items():
            t["base"].setdefault(m, []).append(p)
    rows = {}
    for task, t in per_task.items():
        y, pred = np.concatenate(t["y"]), np.concatenate(t["pred"])
        acc = float(np.mean(pred == y))
        base = {m: np.concatenate(p) for m, p in t["base"].items()}
        accs = {m: float(np.mean(p == y)) for m, p in base.items()}
        row = {"accuracy": acc, "features": float(np.mean(t["frac"]))}
        for m in base:
            row[f"vs {m}"] = acc - accs[m]
        if base:
            better = max(accs, key=accs.get)
            cmp = paired_comparison(y, pred, base[better], better)
            row["worse_than_best_baseline"] = bool(
                cmp["difference"] < 0 and cmp["p_value"] <= 0.05
            )
            row["p_vs_best_baseline"] = float(cmp["p_value"])
        rows[task] = row
    return rows


def summary(rows):
    keys = [k for k in next(iter(rows.values())) if k != "p_vs_best_baseline"]
    out = {k: float(np.mean([r[k] for r in rows.values()])) for k in keys}
    out["worse_than_best_baseline"] = [
        t for t, r in rows.items() if r.get("worse_than_best_baseline")
    ]
    return out


def hindsight(max_fraction=1.0):
    def choose(rec, ridges):
        table = rec["table"]
        acc = np.where(
            allowed_mask(table, ridges)
            & (
                np.asarray(table["n_features_full"])
                <= max_fraction * rec["n_features_total"]
            ),
            table["test_accuracy"],
            -np.inf,
        )
        return int(np.argmax(acc))

    return choose


def _chooser(rule, ridges):
    """``choose(rec) -> index`` of a rule (None: hindsight, see ``HINDSIGHT``)."""
    if isinstance(rule, float):  # hindsight, with this cap on the features
        h = hindsight(rule)
        return lambda rec: h(rec, ridges)
    return lambda rec: rule(rec["table"], allowed_mask(rec["table"], ridges))


#: The hindsight rows: the test-chosen candidate with at most this share of
#: the features.
HINDSIGHT = {"hindsight (test-chosen)": 1.0, "hindsight, <= 25 % features": 0.25}

#: The rows of the docs' table (grid, rule).
DOC_ROWS = [
    (grid, rule)
    for grid in (
        "ridges 1e-3..1e-5 (default)",
        "ridges 1e-3..1e-7",
        "ridges 1e-5..1e-7",
    )
    for rule in ("best", "1se", "baseline unless +0.002", *HINDSIGHT)
]


def recorded(cells, ridges):
    """Whether every cell's table holds candidates of every ridge of a grid.

    A record of the default head (``run_candidates.py --grid default``) has
    only the default ridges: the wider grids cannot be evaluated on it.
    """
    return all(
        allowed_mask(rec["table"], [ridge]).any()
        for rec, _, _ in cells.values()
        for ridge in ridges
    )


def evaluate_all(cells):
    """``{(grid, rule): {"summary": ..., "tasks": ...}}`` for every grid and rule.

    Grids whose ridges are not all recorded in every cell (:func:`recorded`)
    are left out.
    """
    rules = {**RULES, **HINDSIGHT}
    return {
        (grid, name): _result(evaluate(cells, _chooser(rule, ridges)))
        for grid, ridges in GRIDS.items()
        if recorded(cells, ridges)
        for name, rule in rules.items()
    }


def _result(rows):
    return {"summary": summary(rows), "tasks": rows}


def _line(grid, rule, s):
    worse = s["worse_than_best_baseline"]
    return (
        f"{grid:28s} {rule:28s} {100 * s['accuracy']:6.2f} "
        f"{100 * s.get('vs All layers + L2', np.nan):+6.2f} "
        f"{100 * s.get('vs Linear', np.nan):+6.2f} "
        f"{100 * s['features']:5.1f}%  {len(worse)} {', '.join(worse)}"
    )


def rst_table(results, n_cells, tasks):
    """The docs' table: :data:`DOC_ROWS` of ``results``, as an RST grid."""
    head = (
        "ridges",
        "rule",
        "mean acc.",
        "vs All+L2",
        "vs Linear",
        "worse",
        "features",
    )
    rows = []
    for grid, rule in DOC_ROWS:
        if (grid, rule) not in results:
            continue
        s = results[grid, rule]["summary"]
        rows.append(
            (
                grid.removeprefix("ridges "),
                rule,
                f"{100 * s['accuracy']:.2f}",
                f"{100 * s['vs All layers + L2']:+.2f}",
                f"{100 * s['vs Linear']:+.2f}",
                str(len(s["worse_than_best_baseline"])),
                f"{100 * s['features']:.1f} %",
            )
        )
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    rule_line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def fmt(r):
        return (
            "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
        )

    lines = [
        f"{n_cells} (task, seed) cells, {len(tasks)} tasks. Mean over the tasks of "
        "the test accuracy (%, seeds pooled), its gain (points) over All layers + "
        "L2 and Linear, the tasks where it is significantly worse than the better "
        "of the two (exact McNemar, p <= 0.05) and the share of features used.",
        "",
        rule_line,
        fmt(head),
        rule_line.replace("-", "="),
    ]
    for r in rows:
        lines += [fmt(r), rule_line]
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cache-dir", type=Path, default=S.DEFAULT_CACHE)
    p.add_argument("--name", default="wide")
    p.add_argument(
        "--output-dir",
        type=Path,
        default=None,
        help="write candidates_table.rst and candidates_results.json there "
        "(candidates_<name>_table.rst ... for a --name other than wide)",
    )
    args = p.parse_args(argv)
    cells = load(args.cache_dir, args.name, S.TASKS, S.SEEDS)
    tasks = sorted({t for t, _ in cells})
    print(f"{len(cells)} cells, {len(tasks)} tasks: {', '.join(tasks)}")
    results = evaluate_all(cells)
    print(f"{'grid':28s} {'rule':28s} {'acc':>6s} {'vsAll':>6s} {'vsLin':>6s}", end="")
    print(f" {'feat':>6s}  worse")
    for (grid, rule), res in results.items():
        print(_line(grid, rule, res["summary"]))
    if args.output_dir:
        out = args.output_dir
        stem = "candidates" if args.name == "wide" else f"candidates_{args.name}"
        (out / f"{stem}_table.rst").write_text(rst_table(results, len(cells), tasks))
        flat = {f"{g} | {r}": v for (g, r), v in results.items()}
        (out / f"{stem}_results.json").write_text(json.dumps(flat, indent=1))
    return results


if __name__ == "__main__":
    main()
