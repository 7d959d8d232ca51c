"""The transfer suite's report: aggregates, paired tests, tables, files, plot.

Part of ``_suite.py`` (see there): the cached records of each task aggregated
over the seeds with exact McNemar tests (:func:`task_report`), the suite
summary (:func:`summarize`), the reStructuredText tables (:func:`format_rst`),
the CSV / JSON / rst writers (:func:`write_report`) and the gain-versus-affinity
plot (:func:`plot_gain_vs_affinity`).
"""

from pathlib import Path

import _baselines as B
import numpy as np
from _suite_methods import (
    ALL_L2,
    DEFAULT,
    HEAD2TOE_PAPER,
    LINEAR,
    METHODS,
    decode_labels,
    read_json,
)
from _suite_tasks import SEEDS, TASKS, _feature_dir, _now, _slug, git_commit

from skhead2toe import experiments


# ------------------------------------------------------------------ report
def _task_dir(cache, task):
    return Path(cache) / "results" / _slug(task)


def load_cells(cache, task, seeds):
    """Cached records of a task: ``(seed_records, {method: {seed: record}})``."""
    seed_recs, cells = {}, {}
    for seed in seeds:
        d = _task_dir(cache, task) / f"seed{seed}"
        if (rec := read_json(d / "split.json")) is None:
            continue
        seed_recs[seed] = rec
        for f in sorted(d.glob("*.json")):
            if f.name != "split.json":
                r = read_json(f)
                cells.setdefault(r["method"], {})[seed] = r
    return seed_recs, cells


def _pooled(seed_recs, a, b):
    """(y, pred_a, pred_b) concatenated over the seeds both methods have."""
    seeds = [s for s in seed_recs if s in a and s in b]
    if not seeds:
        return None
    cat = np.concatenate
    return (
        cat([decode_labels(seed_recs[s]["y_test"]) for s in seeds]),
        cat([decode_labels(a[s]["predictions"]) for s in seeds]),
        cat([decode_labels(b[s]["predictions"]) for s in seeds]),
    )


def paired(seed_recs, a, b, other):
    """Exact McNemar test of ``a`` against ``b`` on the pooled (seed, image) pairs.

    Returns :func:`skhead2toe.experiments.paired_comparison`'s dict (plus the
    number of pooled pairs), or None when no seed has both methods.
    """
    pooled = _pooled(seed_recs, a, b)
    if pooled is None:
        return None
    y, pa, pb = pooled
    out = experiments.paired_comparison(y, pa, pb, other)
    out["n_pairs"] = int(len(y))
    return out


def _cell(recs, seed_recs, refs):
    """Aggregate one (task, method) over its seeds."""
    seeds = sorted(recs)
    acc = [recs[s]["test_accuracy"] for s in seeds]
    cell = {
        "seeds": seeds,
        "test_accuracy": float(np.mean(acc)),
        "test_accuracy_per_seed": {str(s): a for s, a in zip(seeds, acc, strict=True)},
        "n_features": float(np.mean([recs[s]["n_features"] for s in seeds])),
        "feature_fraction": float(
            np.mean(
                [recs[s]["n_features"] / recs[s]["n_features_total"] for s in seeds]
            )
        ),
        "cpu_s": float(np.mean([recs[s]["cpu_s"] for s in seeds])),
        "convergence_warnings": int(
            sum(recs[s]["convergence_warnings"] for s in seeds)
        ),
        "git_commits": sorted({str(recs[s].get("git_commit")) for s in seeds}),
        "source_hashes": sorted({str(recs[s].get("source_hash")) for s in seeds}),
        "extra_per_seed": {str(s): recs[s].get("extra", {}) for s in seeds},
    }
    for key, ref in refs.items():
        if ref is not None:
            cell[f"vs_{key}"] = paired(seed_recs, recs, ref, key)
    return cell


def _task_meta(cache, task, seed_recs):
    meta = read_json(_feature_dir(cache, task) / "meta.json") or {}
    affs = [
        r["domain_affinity"]["affinity"]
        for r in seed_recs.values()
        if "domain_affinity" in r
    ]
    first = next(iter(seed_recs.values()))
    return {
        "task": task,
        "description": meta.get("description"),
        "n_train": first["n_train"],
        "n_test": first["n_test"],
        "n_classes": first["n_classes"],
        "n_features": first["n_features"],
        "n_images_extracted": meta.get("n_images"),
        "extraction_cpu_s": meta.get("extraction_cpu_s"),
        "domain_affinity": float(np.mean(affs)) if affs else None,
        "domain_affinity_per_seed": {
            str(s): r.get("domain_affinity") for s, r in seed_recs.items()
        },
    }


def task_report(cache, task, seeds):
    """The report of one task (None if nothing is cached for it)."""
    seed_recs, cells = load_cells(cache, task, seeds)
    if not seed_recs:
        return None
    refs = {"linear": cells.get(LINEAR), "all_l2": cells.get(ALL_L2)}
    order = [m for m in METHODS if m in cells] + sorted(set(cells) - set(METHODS))
    out = _task_meta(cache, task, seed_recs)
    out["methods"] = {m: _cell(cells[m], seed_recs, refs) for m in order}
    out["methods_complete"] = [
        m for m in order if set(cells[m]) >= set(seed_recs) == set(seeds)
    ]
    best = _best_reference(out["methods"])
    if best is not None:
        ref = cells[best]
        for m in order:
            out["methods"][m]["vs_best_baseline"] = paired(
                seed_recs, cells[m], ref, best
            )
    out["best_baseline"] = best
    return out


def _best_reference(cells):
    """The better (mean test accuracy) of Linear and All layers + L2, or None."""
    if LINEAR not in cells or ALL_L2 not in cells:
        return None
    return max((ALL_L2, LINEAR), key=lambda m: cells[m]["test_accuracy"])


def _significant(cmp, alpha=0.05, sign=-1):
    """Whether ``cmp`` (a :func:`paired` dict) is significantly behind (-1) / ahead."""
    return (
        cmp is not None
        and cmp["p_value"] <= alpha
        and np.sign(cmp["difference"]) == sign
    )


def summarize(tasks, alpha=0.05):
    """Suite means per method and the targets of the Default rows.

    Per method, over the tasks where it has every seed: mean test accuracy,
    mean gain over All layers + L2 and over Linear (tasks where those have
    every seed too), the tasks where it is significantly behind (``p <=
    alpha`` and behind) or ahead of the better of the two, mean feature
    fraction and mean CPU time.
    """
    methods = []
    for t in tasks:
        methods += [m for m in t["methods_complete"] if m not in methods]
    out = {}
    for m in methods:
        ts = [t for t in tasks if m in t["methods_complete"]]
        cells = [t["methods"][m] for t in ts]

        def gain(ref, ts=ts, m=m):
            d = [
                t["methods"][m]["test_accuracy"] - t["methods"][ref]["test_accuracy"]
                for t in ts
                if ref in t["methods_complete"]
            ]
            return float(np.mean(d)) if d else None

        out[m] = {
            "n_tasks": len(ts),
            "tasks": [t["task"] for t in ts],
            "mean_test_accuracy": float(np.mean([c["test_accuracy"] for c in cells])),
            "mean_gain_vs_all_l2": gain(ALL_L2),
            "mean_gain_vs_linear": gain(LINEAR),
            "significantly_worse_than_best_baseline": [
                t["task"]
                for t in ts
                if _significant(t["methods"][m].get("vs_best_baseline"), alpha)
            ],
            "significantly_better_than_best_baseline": [
                t["task"]
                for t in ts
                if _significant(t["methods"][m].get("vs_best_baseline"), alpha, +1)
            ],
            "mean_feature_fraction": float(
                np.mean([c["feature_fraction"] for c in cells])
            ),
            "mean_n_features": float(np.mean([c["n_features"] for c in cells])),
            "mean_cpu_s": float(np.mean([c["cpu_s"] for c in cells])),
            "convergence_warnings": int(sum(c["convergence_warnings"] for c in cells)),
            "source_hashes": sorted({h for c in cells for h in c["source_hashes"]}),
        }
    return out


def _corr(x, y):
    """(Pearson r, Spearman rho) of two sequences, None where undefined."""
    from scipy.stats import pearsonr, spearmanr

    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3 or x.std() == 0 or y.std() == 0:
        return None, None
    return float(pearsonr(x, y)[0]), float(spearmanr(x, y)[0])


def gain_affinity(tasks, method, ref=LINEAR):
    """Points ``(task, affinity, gain over ref)`` and their correlations."""
    pts = [
        (
            t["task"],
            t["domain_affinity"],
            t["methods"][method]["test_accuracy"] - t["methods"][ref]["test_accuracy"],
        )
        for t in tasks
        if {method, ref} <= set(t["methods_complete"])
        and t["domain_affinity"] is not None
    ]
    r, rho = _corr([p[1] for p in pts], [p[2] for p in pts]) if pts else (None, None)
    return {"points": pts, "pearson_r": r, "spearman_rho": rho}


def build_report(cache, *, tasks=TASKS, seeds=SEEDS, cfg=None, alpha=0.05):
    """Everything cached for ``tasks`` x ``seeds``: per task, summary, text.

    Returns
    -------
    report : dict
        ``tasks`` (:func:`task_report` of each task with results), ``summary``
        (:func:`summarize`), ``gain_vs_affinity`` (per method, over Linear),
        ``metadata``, ``config`` and ``rst`` (:func:`format_rst`).
    """
    reps = [r for t in tasks if (r := task_report(cache, t, seeds)) is not None]
    report = {
        "metadata": {
            "seeds": list(seeds),
            "alpha": alpha,
            "paired_test": (
                "exact McNemar (skhead2toe.experiments.paired_comparison) on the "
                "(seed, test image) pairs pooled over the seeds both methods have"
            ),
            "cpu_time": (
                "time.process_time() of the method on one (task, seed), one "
                "thread; feature extraction (once per task) not included"
            ),
            "date_utc": _now(),
            "git_commit": git_commit(),
        },
        "config": cfg.to_dict() if cfg is not None else None,
        "tasks": reps,
        "summary": summarize(reps, alpha),
        "gain_vs_affinity": {
            m: gain_affinity(reps, m) for m in (DEFAULT, HEAD2TOE_PAPER, *METHODS)
        },
    }
    report["rst"] = format_rst(report)
    return report


def rst_table(header, rows):
    """A reStructuredText grid table of string cells."""
    cols = list(zip(header, *rows, strict=True))
    widths = [max(len(c) for c in col) for col in cols]
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def fmt(cells):
        return (
            "| "
            + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))
            + " |"
        )

    out = [line, fmt(header), line.replace("-", "=")]
    for r in rows:
        out += [fmt(r), line]
    return "\n".join(out)


def _pct(x, signed=False, nd=2):
    if x is None:
        return "-"
    return f"{100 * x:+.{nd}f}" if signed else f"{100 * x:.{nd}f}"


def _mark(cmp, alpha):
    if _significant(cmp, alpha, +1):
        return " +"
    if _significant(cmp, alpha, -1):
        return " -"
    return ""


def _methods_of(report):
    seen = []
    for t in report["tasks"]:
        seen += [m for m in t["methods"] if m not in seen]
    return seen


def _accuracy_table(report, alpha):
    methods = _methods_of(report)
    rows = []
    for t in report["tasks"]:
        cells = []
        for m in methods:
            c = t["methods"].get(m)
            if c is None:
                cells.append("")
                continue
            partial = "" if m in t["methods_complete"] else f" ({len(c['seeds'])}s)"
            cells.append(
                _pct(c["test_accuracy"]) + _mark(c.get("vs_all_l2"), alpha) + partial
            )
        rows.append([t["task"], _pct(t["domain_affinity"], True, 1), *cells])
    s = report["summary"]
    rows.append(
        [
            "suite mean",
            "",
            *[_pct(s[m]["mean_test_accuracy"]) if m in s else "" for m in methods],
        ]
    )
    return rst_table(["task", "affinity", *methods], rows)


def _detail_table(report):
    rows = []
    for t in report["tasks"]:
        for m, c in t["methods"].items():
            vs = c.get("vs_all_l2")
            per_seed = " / ".join(
                _pct(a, nd=1) for a in c["test_accuracy_per_seed"].values()
            )
            rows.append(
                [
                    t["task"],
                    m,
                    _pct(c["test_accuracy"]),
                    per_seed,
                    ""
                    if vs is None or m == ALL_L2
                    else f"{100 * vs['difference']:+.1f}",
                    "" if vs is None or m == ALL_L2 else f"{vs['p_value']:.2g}",
                    f"{c['n_features']:.0f}",
                    f"{c['cpu_s']:.1f}",
                ]
            )
    return rst_table(
        [
            "task",
            "method",
            "accuracy",
            "per seed",
            "vs All+L2",
            "p",
            "features",
            "CPU s",
        ],
        rows,
    )


def _tasks_table(report):
    rows = [
        [
            t["task"],
            str(t["n_train"]),
            str(t["n_test"]),
            str(t["n_classes"]),
            _pct(t["domain_affinity"], True, 1),
            " / ".join(
                _pct((a or {}).get("affinity"), True, 1)
                for a in t["domain_affinity_per_seed"].values()
            ),
            "-" if t["extraction_cpu_s"] is None else f"{t['extraction_cpu_s']:.0f}",
            str(t["n_images_extracted"]),
        ]
        for t in report["tasks"]
    ]
    header = ["task", "train", "test", "classes", "affinity", "per seed"]
    return rst_table([*header, "extraction CPU s", "images"], rows)


def _summary_table(report):
    rows = []
    for m, v in report["summary"].items():
        worse = v["significantly_worse_than_best_baseline"]
        rows.append(
            [
                m,
                str(v["n_tasks"]),
                _pct(v["mean_test_accuracy"]),
                _pct(v["mean_gain_vs_all_l2"], True),
                _pct(v["mean_gain_vs_linear"], True),
                str(len(worse)),
                str(len(v["significantly_better_than_best_baseline"])),
                f"{100 * v['mean_feature_fraction']:.1f} %",
                f"{v['mean_cpu_s']:.1f}",
                str(v["convergence_warnings"]),
            ]
        )
    return rst_table(
        [
            "method",
            "tasks",
            "mean acc.",
            "vs All+L2",
            "vs Linear",
            "worse than best baseline",
            "better",
            "features",
            "CPU s",
            "warnings",
        ],
        rows,
    )


def _worse_list(report):
    """Bullet lines naming the tasks each head is significantly worse on."""
    lines = []
    for m, v in report["summary"].items():
        if m in (LINEAR, ALL_L2):
            continue
        worse = v["significantly_worse_than_best_baseline"]
        lines.append(f"* {m}: {', '.join(f'``{t}``' for t in worse) or 'none'}")
    if not lines:
        return []
    return [
        "Tasks where a head is significantly worse than the better of Linear and"
        " All layers + L2:",
        "",
        *lines,
        "",
    ]


def format_rst(report):
    """The report as reStructuredText: accuracy, summary and detail tables."""
    alpha = report["metadata"]["alpha"]
    n = len(report["metadata"]["seeds"])
    parts = [
        f"Test accuracy (%, mean over {n} seeds); affinity in points. ``+`` / ``-``:"
        f" significantly above / below All layers + L2 (exact McNemar on the pooled"
        f" (seed, image) pairs, p <= {alpha}); ``(ks)``: only k seeds so far.",
        "",
        _accuracy_table(report, alpha),
        "",
        "Per method, over the tasks where it has every seed: mean accuracy (%), mean"
        " gain (points) over All layers + L2 and over Linear, tasks where it is"
        " significantly worse / better than the better of Linear and All layers +"
        f" L2 (p <= {alpha}), mean fraction of the features used, mean CPU s per"
        " (task, seed) at one thread, extraction excluded, and the convergence"
        " warnings of all its fits.",
        "",
        _summary_table(report),
        "",
        *_worse_list(report),
        "Per task and method: accuracy (%, mean and per seed), difference to All"
        " layers + L2 (points) and its pooled McNemar p value, features used and"
        " CPU s (means over the seeds):",
        "",
        _detail_table(report),
        "",
        "Tasks: training / test images per seed (test sizes of seed 0), classes,"
        " domain affinity (points; mean and per seed), CPU s of the one feature"
        " extraction of the task's images (every seed's).",
        "",
        _tasks_table(report),
    ]
    return "\n".join(parts) + "\n"


CSV_COLUMNS = (
    "task",
    "method",
    "n_seeds",
    "test_accuracy",
    "test_accuracy_per_seed",
    "diff_vs_all_l2",
    "p_vs_all_l2",
    "diff_vs_best_baseline",
    "p_vs_best_baseline",
    "n_features",
    "feature_fraction",
    "cpu_s",
    "convergence_warnings",
    "domain_affinity",
    "extraction_cpu_s",
    "git_commits",
)


def csv_rows(report):
    """One flat row per (task, method) with :data:`CSV_COLUMNS`."""
    rows = []
    for t in report["tasks"]:
        for m, c in t["methods"].items():
            vs, best = c.get("vs_all_l2") or {}, c.get("vs_best_baseline") or {}
            rows.append(
                {
                    "task": t["task"],
                    "method": m,
                    "n_seeds": len(c["seeds"]),
                    "test_accuracy": round(c["test_accuracy"], 4),
                    "test_accuracy_per_seed": " ".join(
                        f"{a:.4f}" for a in c["test_accuracy_per_seed"].values()
                    ),
                    "diff_vs_all_l2": _round(vs.get("difference")),
                    "p_vs_all_l2": _round(vs.get("p_value")),
                    "diff_vs_best_baseline": _round(best.get("difference")),
                    "p_vs_best_baseline": _round(best.get("p_value")),
                    "n_features": round(c["n_features"], 1),
                    "feature_fraction": round(c["feature_fraction"], 4),
                    "cpu_s": round(c["cpu_s"], 2),
                    "convergence_warnings": c["convergence_warnings"],
                    "domain_affinity": _round(t["domain_affinity"]),
                    "extraction_cpu_s": t["extraction_cpu_s"],
                    "git_commits": " ".join(c["git_commits"]),
                }
            )
    return rows


def _round(x, nd=4):
    return "" if x is None else round(float(x), nd)


def write_report(report, out, *, plot=True):
    """``suite_results.{csv,json}``, ``suite_table.rst`` (and the plot) in ``out``."""
    from skhead2toe._io import atomic_write

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    B.write_csv(out / "suite_results.csv", csv_rows(report), columns=CSV_COLUMNS)
    B.write_json(
        out / "suite_results.json", {k: v for k, v in report.items() if k != "rst"}
    )
    data = report["rst"].encode()
    atomic_write(out / "suite_table.rst", lambda f: f.write(data), suffix=".rst")
    if plot:
        plot_gain_vs_affinity(report, out / "suite_gain_vs_affinity.png")


def plot_gain_vs_affinity(report, path, methods=(DEFAULT, HEAD2TOE_PAPER)):
    """Gain over Linear against domain affinity, one point per task, as a PNG.

    The legend gives each method's Pearson and Spearman correlation.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from skhead2toe._io import atomic_write

    fig, ax = plt.subplots(figsize=(8, 5.2), layout="constrained")
    labelled = False
    for method, marker in zip(methods, "os^v", strict=False):
        g = report["gain_vs_affinity"].get(method) or gain_affinity(
            report["tasks"], method
        )
        if not g["points"]:
            continue
        names, x, y = zip(*g["points"], strict=True)
        x, y = 100 * np.asarray(x), 100 * np.asarray(y)
        r, rho = g["pearson_r"], g["spearman_rho"]
        corr = (
            "" if r is None else f" (Pearson r = {r:+.2f}, Spearman rho = {rho:+.2f})"
        )
        ax.scatter(x, y, marker=marker, s=50, alpha=0.8, label=f"{method}{corr}")
        if not labelled:
            order = np.argsort(x)  # alternate above / below along the x axis
            for k, i in enumerate(order):
                ax.annotate(
                    names[i],
                    (x[i], y[i]),
                    textcoords="offset points",
                    xytext=(4, 5 if k % 2 == 0 else -10),
                    fontsize=7,
                )
            labelled = True
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_title(
        "Gain over the linear probe vs domain affinity (one point per task)",
        fontsize=10,
    )
    ax.set_xlabel("domain affinity (linear probe - pixels probe, CV accuracy, points)")
    ax.set_ylabel("test accuracy gain over Linear (points, mean of seeds)")
    ax.legend(fontsize=7)
    try:
        atomic_write(
            Path(path), lambda f: fig.savefig(f, format="png", dpi=120), suffix=".png"
        )
    finally:
        plt.close(fig)
