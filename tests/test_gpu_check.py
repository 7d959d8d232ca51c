"""benchmarks/gpu_check.sh and bench_gpu.py on a machine without CUDA.

The GPU work itself is in tests/test_cuda.py (skipped here); these tests run the
script's CPU-only path with CUDA hidden from torch, and its bookkeeping.
"""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_gpu  # noqa: E402


def _no_cuda_env(**extra):
    return dict(os.environ, CUDA_VISIBLE_DEVICES="", **extra)


def _logging_python(tmp_path):
    """A python that logs each call's arguments to a file, then runs the real one."""
    calls = tmp_path / "calls.txt"
    wrapper = tmp_path / "python"
    wrapper.write_text(
        f'#!/bin/sh\necho "$*" >> "{calls}"\nexec "{sys.executable}" "$@"\n'
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return wrapper, calls


def test_without_cuda_it_says_so_exits_0_and_runs_no_gpu_work(tmp_path):
    import torch

    python, calls = _logging_python(tmp_path)
    results = tmp_path / "results"
    results.mkdir()
    env = _no_cuda_env(PYTHON=str(python), GPU_CHECK_RESULTS=str(results))
    done = subprocess.run(
        ["bash", str(SCRIPT)], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no CUDA device" in done.stdout
    # python ran twice: the device description and the results files, nothing else
    ran = calls.read_text().splitlines()
    assert [line.split()[1] for line in ran] == ["--device-info", "--collect"], ran
    assert not any("-m pytest" in line or "--part" in line for line in ran)
    files = sorted(p.name for p in results.iterdir())
    assert [Path(f).suffix for f in files] == [".json", ".txt"], files
    assert all(f.startswith("gpu_check_") for f in files)
    report = json.loads((results / files[0]).read_text())
    assert report["status"] == "no CUDA device"
    assert report["tests"] is None and report["benchmarks"] is None
    assert [s["name"] for s in report["steps"]] == ["device"]
    assert report["device"]["torch"] == torch.__version__
    assert report["device"]["cuda_available"] is False
    text = (results / files[1]).read_text()
    assert text.startswith("gpu_check ") and "no CUDA device" in text
    assert "CUDA tests and GPU benchmarks were not run" in text


def test_bench_gpu_without_cuda_exits_0_without_benchmarking(tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_gpu.py"), "--json", str(out)],
        capture_output=True,
        text=True,
        env=_no_cuda_env(),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "no CUDA device" in done.stdout
    assert "[1]" not in done.stdout and "[2]" not in done.stdout
    assert json.loads(out.read_text()) == {"cuda": False}


@pytest.mark.parametrize(
    "args, env, message",
    [
        (["--fast"], {}, "unknown argument '--fast'"),
        ([], {"PYTHON": "/nonexistent/python"}, "/nonexistent/python not found"),
        ([], {"GPU_CHECK_RESULTS": "/nonexistent/results"}, "'/nonexistent/results'"),
    ],
)
def test_bad_invocations_fail_early_with_a_clear_message(args, env, message):
    done = subprocess.run(
        ["bash", str(SCRIPT), *args],
        capture_output=True,
        text=True,
        env=dict(os.environ, **env),
        timeout=30,
    )
    assert done.returncode == 2
    assert message in done.stderr


_JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="3" failures="1" errors="0" skipped="0">
<testcase classname="tests.test_cuda" name="test_a"/>
<testcase classname="tests.test_cuda" name="test_b"><failure message="x"/></testcase>
<testcase classname="tests.test_cuda" name="test_c"/>
</testsuite></testsuites>
"""


def _collect(tmp_path, steps, junit=_JUNIT):
    info = tmp_path / "info.json"
    info.write_text(json.dumps({"cuda_available": True, "device_name": "GPU"}))
    (tmp_path / "steps.tsv").write_text("".join(f"{s}\n" for s in steps))
    (tmp_path / "junit.xml").write_text(junit)
    featurizer = {"backbone": "b", "head2toe_img_s": 9.0, "plain_img_s": 10.0}
    featurizer["ratio_median"] = 0.9
    (tmp_path / "feat.json").write_text(json.dumps({"featurizer": [featurizer]}))
    (tmp_path / "log.txt").write_text("the console log\n")
    stem = tmp_path / "out" / "gpu_check_x"
    stem.parent.mkdir()
    argv = ["--collect", str(stem), "--info", str(info)]
    argv += [
        "--steps",
        str(tmp_path / "steps.tsv"),
        "--junit",
        str(tmp_path / "junit.xml"),
    ]
    argv += ["--bench", str(tmp_path / "feat.json"), str(tmp_path / "absent.json")]
    argv += ["--log", str(tmp_path / "log.txt")]
    status = bench_gpu.main(argv)
    report = json.loads(stem.with_suffix(".json").read_text())
    return status, report, stem.with_suffix(".txt").read_text()


def test_collect_reports_a_failed_test_and_a_timed_out_step(tmp_path, capsys):
    steps = ["device\t0\t3\t40", "tests\t1\t50\t95", "solver\t124\t225\t225"]
    status, report, text = _collect(tmp_path, steps)
    assert status == 1 and report["status"] == "failed"
    assert report["tests"]["passed"] == 2 and report["tests"]["failures"] == 1
    assert report["tests"]["not_passed"] == ["tests.test_cuda::test_b"]
    assert [s["timed_out"] for s in report["steps"]] == [False, False, True]
    assert report["benchmarks"]["featurizer"][0]["ratio_median"] == 0.9
    assert "TIMED OUT" in text and "not passed: tests.test_cuda::test_b" in text
    assert text.endswith("the console log\n")
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".tmp")]


def test_collect_is_ok_only_when_every_step_passed_and_no_test_skipped(tmp_path):
    passing = _JUNIT.replace('failures="1"', 'failures="0"')
    passing = passing.replace('<failure message="x"/>', "")
    steps = ["device\t0\t3\t40", "tests\t0\t50\t95"]
    status, report, _ = _collect(tmp_path, steps, passing)
    assert status == 0 and report["status"] == "ok"
    assert report["tests"]["passed"] == 3
    skipped = passing.replace('skipped="0"', 'skipped="3"')
    again = tmp_path / "again"
    again.mkdir()
    status, report, _ = _collect(again, steps, skipped)
    assert status == 1 and report["status"] == "failed"
