"""GPU benchmarks: the featurizer and the torch solver on CUDA, printed as ratios.

Two measurements (``--part``), each reusing the CPU benchmarks' code:

1. ``featurizer``: images/s of ``MultiLayerFeaturizer.transform`` (the
   ``"head2toe"`` taps of the embedded EfficientNet-Lite0, 224 px) on CUDA
   against a plain forward of the same network on the same batches, both under
   bfloat16 autocast in channels-last format (``bench_featurizer.bench_throughput``,
   interleaved ABBA pairs); in full mode also ViT-B/16 with random weights.
2. ``solver``: ``GroupLassoClassifier(solver="torch", device="cuda")`` against
   the CPU default (``solver="auto", device="cpu"``: Newton on one BLAS thread)
   on Head2Toe-shaped problems (``_problems.make_head2toe_problem``: n = 1000,
   d = 100,000, K = 10 and 100), ``alpha = 0.1 alpha_max``, both at the same
   ``tol`` (default 1e-4, the estimator's). Times are a fit's wall clock
   (host-to-device copy included), best of 3 when under a second; both
   solutions are scored by the independent float64 objective of ``_peers.py``.
   The CPU fit runs in a child process, at the same time as the GPU fits of
   the same problem (one CPU thread each, on a many-core machine), and is
   stopped at ``--cpu-cap`` seconds: the ratio is then a lower bound (``>``).

Without a CUDA device it prints "no CUDA device" and exits 0, having run
nothing. ``--device-info`` and ``--collect`` are the steps of
``benchmarks/gpu_check.sh`` (device description; the results files).

Usage::

    python benchmarks/bench_gpu.py [--quick] [--part featurizer|solver|all]
                                   [--json PATH]
    python benchmarks/bench_gpu.py --device-info PATH   # exit 0 with CUDA, 3 without
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # no spinning OpenMP threads

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

NO_CUDA = "no CUDA device"
NO_CUDA_EXIT = 3  # --device-info's exit status without CUDA
ALPHA_FRAC = 0.1


def _write_text(path, text):
    from skhead2toe._io import atomic_write

    atomic_write(Path(path), lambda f: f.write(text.encode()), suffix=".tmp")


def _write_json(path, data):
    _write_text(path, json.dumps(data, indent=2, default=str) + "\n")


# ----------------------------------------------------------------- device info
def _nvidia_driver():
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 else None


def device_info():
    """Versions and, when torch sees CUDA, the GPU: a JSON-ready dict."""
    import numpy as np
    import sklearn
    import timm
    import torch

    import skhead2toe

    info = {
        "cuda_available": torch.cuda.is_available(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "timm": timm.__version__,
        "skhead2toe": skhead2toe.__version__,
        "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }
    if info["cuda_available"]:
        props = torch.cuda.get_device_properties(0)
        info.update(
            device_name=props.name,
            device_count=torch.cuda.device_count(),
            capability=f"{props.major}.{props.minor}",
            memory_gib=round(props.total_memory / 2**30, 1),
            cudnn=torch.backends.cudnn.version(),
            driver=_nvidia_driver(),
        )
    return info


def _describe(info):
    if not info:
        return "device: unknown (the device-info step wrote nothing)"
    get = info.get
    versions = f"torch {get('torch')}, CUDA {get('torch_cuda')}"
    if not get("cuda_available"):
        return f"{NO_CUDA} ({versions}; torch.cuda.is_available() is False)"
    return (
        f"CUDA device: {get('device_name')} ({get('memory_gib')} GiB, capability "
        f"{get('capability')}, driver {get('driver')}), {versions}, "
        f"cuDNN {get('cudnn')}, {get('cpu_count')} CPUs"
    )


# ------------------------------------------------------------------ featurizer
def bench_featurizers(quick, device="cuda", n_images=None):
    """Featurizer against plain forward: one result dict per backbone."""
    from bench_featurizer import bench_throughput

    n = n_images or (256 if quick else 1024)
    runs = [("efficientnet_lite0", True, n, 64 if quick else 128, 3 if quick else 5)]
    if not quick:
        runs.append(("vit_b16", False, max(1, n // 2), 64, 3))
    rows = []
    for backbone, pretrained, n_images, batch_size, repeats in runs:
        row = bench_throughput(
            device, backbone, pretrained, n_images, batch_size, repeats
        )
        row.update(batch_size=batch_size, n_images=n_images, pretrained=pretrained)
        rows.append(row)
        print(
            f"  {row['backbone']:<34} batch {batch_size:4d}: head2toe "
            f"{row['head2toe_img_s']:9.1f} img/s, plain {row['plain_img_s']:9.1f} "
            f"img/s, ratio {row['ratio_median']:.3f} "
            f"({', '.join(f'{r:.3f}' for r in row['ratios'])})",
            flush=True,
        )
    return rows


# ---------------------------------------------------------------------- solver
def _problem(d, K, n, seed):
    from _peers import alpha_max
    from _problems import make_head2toe_problem

    problem = make_head2toe_problem(n=n, d=d, n_classes=K, random_state=seed)
    return problem, ALPHA_FRAC * alpha_max(problem.X, problem.y)


def _timed_fit(X, y, alpha, tol, solver, device):
    """Best-of-3 (when under a second) fit; a JSON-ready summary of it."""
    from _peers import best_of, primal_objective
    from bench_solvers import fit_ours

    W, b, seconds, model = best_of(
        lambda: fit_ours(X, y, alpha, tol, solver=solver, device=device), repeat=3
    )
    return {
        "seconds": seconds,
        "objective": primal_objective(X, y, W, b, alpha),
        "dual_gap": float(model.dual_gap_),
        "converged": bool(model.converged_),
        "n_iter": int(model.n_iter_),
        "n_selected": int(model.selected_features_.sum()),
    }


def _cpu_child(d, K, n, tol, seed):
    """In a child process: the CPU default fit; its summary as the last line."""
    problem, alpha = _problem(d, K, n, seed)
    print(json.dumps({"fit_started": time.time()}), flush=True)
    row = _timed_fit(problem.X, problem.y, alpha, tol, "auto", "cpu")
    print(json.dumps(row), flush=True)


def _start_cpu_fit(d, K, n, tol, seed):
    cmd = [sys.executable, __file__, "--cpu-child", str(d), str(K), str(n)]
    cmd += ["--tol", str(tol), "--seed", str(seed)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)


def _wait_cpu_fit(proc, cap, started):
    """The child's summary, or a lower bound on its time when it ran past ``cap``."""
    timed_out = False
    try:
        out, _ = proc.communicate(timeout=max(0.1, cap - (time.time() - started)))
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        timed_out = True
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    if not timed_out and proc.returncode == 0 and lines and "seconds" in lines[-1]:
        return lines[-1]
    fit_start = next(
        (row["fit_started"] for row in lines if "fit_started" in row), None
    )
    return {
        "seconds": None,
        "stopped_after": None if fit_start is None else time.time() - fit_start,
        "returncode": proc.returncode,
        "timed_out": timed_out,
    }


def _warm_up(K, tol, device):
    """One small torch fit on ``device``: context, cuBLAS and kernels ready."""
    problem, alpha = _problem(500, K, 200, seed=1)
    _timed_fit(problem.X, problem.y, alpha, tol, "torch", device)


def bench_solver(d, K, *, n, tol, cpu_cap, seed=0, device="cuda"):
    """Torch on ``device`` against the CPU default on one problem: a result dict."""
    started = time.time()
    proc = _start_cpu_fit(d, K, n, tol, seed)
    try:
        _warm_up(K, tol, device)
        problem, alpha = _problem(d, K, n, seed)
        gpu = _timed_fit(problem.X, problem.y, alpha, tol, "torch", device)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    cpu = _wait_cpu_fit(proc, cpu_cap, started)
    row = {"n": n, "d": d, "K": K, "alpha_frac": ALPHA_FRAC, "tol": tol}
    row["device"] = str(device)
    row.update(alpha=alpha, cpu_cap_s=cpu_cap, gpu=gpu, cpu=cpu)
    if cpu["seconds"] is not None:
        row["speedup"] = cpu["seconds"] / gpu["seconds"]
        row["speedup_is_lower_bound"] = False
        diff = abs(gpu["objective"] - cpu["objective"])
        row["objective_rel_diff"] = diff / cpu["objective"]
    elif cpu["stopped_after"] is not None:
        row["speedup"] = cpu["stopped_after"] / gpu["seconds"]
        row["speedup_is_lower_bound"] = True
    return row


def _print_solver_row(row):
    gpu, cpu = row["gpu"], row["cpu"]
    head = f"  d={row['d']:<7d} K={row['K']:<4d} tol={row['tol']:g}:"
    gpu_txt = f"torch-{row['device']} {gpu['seconds']:8.3f} s"
    if cpu["seconds"] is not None:
        print(
            f"{head} {gpu_txt}, cpu default {cpu['seconds']:8.3f} s, cpu/gpu "
            f"{row['speedup']:7.2f}x, objectives differ by "
            f"{row['objective_rel_diff']:.1e} (relative)",
            flush=True,
        )
    elif "speedup" in row:
        print(
            f"{head} {gpu_txt}, cpu default unfinished after "
            f"{cpu['stopped_after']:.1f} s (cap {row['cpu_cap_s']:g} s), cpu/gpu > "
            f"{row['speedup']:.2f}x",
            flush=True,
        )
    else:
        print(f"{head} {gpu_txt}, cpu default failed ({cpu})", flush=True)


def bench_solvers(sizes, classes, *, n, tol, cpu_cap, device="cuda", save=None):
    """Every (d, K) of ``sizes`` x ``classes``: the list of result dicts.

    ``save(rows)`` is called after each problem, so that a run stopped from
    outside keeps the rows done.
    """
    rows = []
    for d in sizes:
        for K in classes:
            row = bench_solver(d, K, n=n, tol=tol, cpu_cap=cpu_cap, device=device)
            rows.append(row)
            _print_solver_row(row)
            if save is not None:
                save(rows)
    return rows


# ------------------------------------------------------------------- collect
def _junit_summary(path):
    """Counts and failed test ids from pytest's ``--junitxml`` file (or None)."""
    import xml.etree.ElementTree as ET

    if not path or not Path(path).is_file() or Path(path).stat().st_size == 0:
        return None
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    counts = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures")}
    counts.update(
        {k: sum(int(s.get(k, 0)) for s in suites) for k in ("errors", "skipped")}
    )
    counts["passed"] = (
        counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    )
    counts["not_passed"] = [
        f"{case.get('classname')}::{case.get('name')}"
        for case in root.iter("testcase")
        if case.find("failure") is not None or case.find("error") is not None
    ]
    return counts


def _read_steps(path):
    steps = []
    if path and Path(path).is_file():
        for line in Path(path).read_text().splitlines():
            name, rc, seconds, limit = line.split("\t")
            rc = int(rc)
            steps.append(
                {
                    "name": name,
                    "returncode": rc,
                    "seconds": int(seconds),
                    "limit_s": int(limit),
                    "timed_out": rc in (124, 137),
                }
            )
    return steps


def _git_commit():
    try:
        out = subprocess.run(
            ["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _summary_lines(report):
    lines = [
        f"gpu_check {report['date']} commit {report['commit']}: {report['status']}",
        _describe(report["device"]),
    ]
    for step in report["steps"]:
        flag = " TIMED OUT" if step["timed_out"] else ""
        lines.append(
            f"  step {step['name']:<11} exit {step['returncode']:3d} "
            f"{step['seconds']:4d} s (limit {step['limit_s']} s){flag}"
        )
    tests = report["tests"]
    if tests is not None:
        lines.append(
            f"  tests -m cuda: {tests['passed']} passed, {tests['failures']} failed, "
            f"{tests['errors']} errors, {tests['skipped']} skipped"
        )
        lines += [f"    not passed: {name}" for name in tests["not_passed"]]
    bench = report["benchmarks"] or {}
    for row in bench.get("featurizer") or []:
        lines.append(
            f"  featurizer {row['backbone']}: {row['head2toe_img_s']:.1f} img/s, "
            f"plain forward {row['plain_img_s']:.1f} img/s, ratio "
            f"{row['ratio_median']:.3f}"
        )
    for row in bench.get("solver") or []:
        bound = ">" if row.get("speedup_is_lower_bound") else ""
        speed = f"{bound}{row['speedup']:.2f}x" if "speedup" in row else "n/a"
        cpu = row["cpu"]["seconds"]
        cpu = "unfinished" if cpu is None else f"{cpu:.3f} s"
        lines.append(
            f"  solver d={row['d']} K={row['K']}: torch-{row['device']} "
            f"{row['gpu']['seconds']:.3f} s, cpu default {cpu}, cpu/gpu {speed}"
        )
    return lines


def _all_passed(steps, tests):
    """Every step exited 0 and ran CUDA tests, none skipped (this machine has CUDA)."""
    ok = bool(steps) and all(step["returncode"] == 0 for step in steps)
    return ok and tests is not None and tests["tests"] > 0 and not tests["skipped"]


def collect(args):
    """Write ``<stem>.json`` and ``<stem>.txt`` from the steps' files; the status."""
    info = json.loads(Path(args.info).read_text()) if args.info else {}
    steps = _read_steps(args.steps)
    tests = _junit_summary(args.junit)
    bench = {}
    for path in args.bench or []:
        if Path(path).is_file() and Path(path).stat().st_size:
            bench.update(json.loads(Path(path).read_text()))
    if not info:
        status = "failed"
    elif not info["cuda_available"]:
        status = NO_CUDA
    elif _all_passed(steps, tests):
        status = "ok"
    else:
        status = "failed"
    report = {
        "status": status,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "commit": _git_commit(),
        "device": info,
        "steps": steps,
        "tests": tests,
        "benchmarks": bench or None,
    }
    lines = _summary_lines(report)
    log = Path(args.log).read_text() if args.log and Path(args.log).is_file() else ""
    stem = Path(args.collect)
    _write_json(stem.with_suffix(".json"), report)
    _write_text(stem.with_suffix(".txt"), "\n".join(lines) + "\n\n" + log)
    print("\n".join(lines))
    print(f"results: {stem.with_suffix('.txt')} and {stem.with_suffix('.json')}")
    return status


# ---------------------------------------------------------------------- main
def _parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="d=20,000, K=10, fewer images")
    p.add_argument("--part", choices=["featurizer", "solver", "all"], default="all")
    p.add_argument("--sizes", type=int, nargs="+", help="solver d (default 100000)")
    p.add_argument("--classes", type=int, nargs="+", help="solver K (default 10 100)")
    p.add_argument("--samples", type=int, default=1000)
    p.add_argument("--tol", type=float, default=1e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cpu-cap", type=float, default=170.0, help="seconds per CPU fit")
    p.add_argument("--json", help="write the results there")
    p.add_argument("--device-info", metavar="PATH", help="describe the device only")
    p.add_argument("--collect", metavar="STEM", help="write STEM.json and STEM.txt")
    p.add_argument("--info", help="--collect: the --device-info file")
    p.add_argument("--steps", help="--collect: name, exit, seconds, limit per line")
    p.add_argument("--junit", help="--collect: pytest's --junitxml file")
    p.add_argument("--bench", nargs="*", help="--collect: --json files")
    p.add_argument("--log", help="--collect: the console log")
    p.add_argument("--images", type=int, help="featurizer images (256 quick, 1024)")
    p.add_argument(
        "--device",
        default="cuda",
        help="'cpu': a dry run of this script's code on the CPU (not a GPU number)",
    )
    p.add_argument("--cpu-child", type=int, nargs=3, help=argparse.SUPPRESS)
    return p


def run_benchmarks(args):
    """The benchmarks of ``--part``: a dict of result lists (one per part).

    With ``--json`` the file is rewritten after each part and each solver
    problem.
    """
    results = {}

    def save(_=None):
        if args.json:
            _write_json(args.json, results)

    if args.part in ("featurizer", "all"):
        print(
            f"[1] featurizer on {args.device} against a plain forward (on CUDA: "
            "bfloat16 autocast, channels-last)"
        )
        results["featurizer"] = bench_featurizers(args.quick, args.device, args.images)
        save()
    if args.part in ("solver", "all"):
        sizes = args.sizes or ([20_000] if args.quick else [100_000])
        classes = args.classes or ([10] if args.quick else [10, 100])
        print(
            f"[2] solver='torch' on {args.device} against the CPU default, "
            f"n={args.samples}, alpha = {ALPHA_FRAC} alpha_max"
        )
        results["solver"] = []
        results["solver"] = bench_solvers(
            sizes,
            classes,
            n=args.samples,
            tol=args.tol,
            cpu_cap=args.cpu_cap,
            device=args.device,
            save=lambda rows: (results.__setitem__("solver", rows), save()),
        )
        save()
    return results


def main(argv=None):
    args = _parser().parse_args(argv)
    if args.cpu_child:
        _cpu_child(*args.cpu_child, tol=args.tol, seed=args.seed)
        return 0
    if args.collect:
        return 0 if collect(args) in ("ok", NO_CUDA) else 1
    info = device_info()
    print(_describe(info), flush=True)
    if args.device_info:
        _write_json(args.device_info, info)
        return 0 if info["cuda_available"] else NO_CUDA_EXIT
    if args.device != "cpu" and not info["cuda_available"]:
        if args.json:
            _write_json(args.json, {"cuda": False})
        return 0
    run_benchmarks(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
