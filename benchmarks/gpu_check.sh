#!/usr/bin/env bash
# One-command GPU check: the CUDA-marked tests and the GPU benchmarks, one results file.
#
#   make venv && benchmarks/gpu_check.sh [--quick]
#
# Installs nothing: it uses what `make venv` installed (.venv/bin/python, or $PYTHON).
# Steps, each under its own `timeout` so that the whole run stays under 8 minutes:
#   device      describe the GPU and the versions (bench_gpu.py --device-info)   40 s
#   tests       pytest -m cuda (tests/test_cuda.py and the other CUDA tests)     95 s
#   featurizer  featurizer against a plain forward on CUDA (bench_gpu.py)        70 s
#   solver      solver="torch" on CUDA against the CPU default (bench_gpu.py)   225 s
#   collect     write the results files                                          20 s
# (475 s at most, with 5 s for each step to stop once its time is up.)
# Without a CUDA device it prints "no CUDA device", runs no test nor benchmark,
# still writes the results files (saying so) and exits 0. Otherwise it exits 0
# when every step passed, 1 when one failed or ran out of time.
#
# Results: $GPU_CHECK_RESULTS/gpu_check_<UTC date and time>.{txt,json} (default
# folder benchmarks/results): device, torch/CUDA versions, the steps' exit status
# and time, the test summary, the benchmark numbers, and the console log.
set -euo pipefail

usage() {
    sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

quick=()
case "${1:-}" in
    "") ;;
    --quick) quick=(--quick) ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        echo "gpu_check.sh: unknown argument '$1' (use --quick, --help or nothing)" >&2
        exit 2
        ;;
esac

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-.venv/bin/python}
RESULTS=${GPU_CHECK_RESULTS:-benchmarks/results}
if [[ ! -x $PYTHON ]]; then
    echo "gpu_check.sh: $PYTHON not found: run 'make venv' first" >&2
    exit 2
fi
if [[ ! -d $RESULTS ]]; then
    echo "gpu_check.sh: the results folder '$RESULTS' does not exist" >&2
    exit 2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log=$work/log.txt
steps=$work/steps.tsv
: >"$steps"
stem=$RESULTS/gpu_check_$(date -u +%Y%m%dT%H%M%SZ)

# step NAME LIMIT COMMAND...: run COMMAND under `timeout`, its output into the log;
# append "NAME<TAB>exit status<TAB>seconds<TAB>LIMIT" to the steps file.
step() {
    local name=$1 limit=$2 start=$SECONDS rc=0
    shift 2
    echo "== $name (at most ${limit} s): $*" | tee -a "$log"
    timeout -k 5 "$limit" "$@" 2>&1 | tee -a "$log" || rc=$?
    if ((rc == 124 || rc == 137)); then
        echo "== $name: stopped after ${limit} s" | tee -a "$log"
    fi
    printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$((SECONDS - start))" "$limit" >>"$steps"
    return "$rc"
}

collect() {
    local rc=0
    timeout -k 5 20 "$PYTHON" benchmarks/bench_gpu.py --collect "$stem" \
        --info "$work/info.json" --steps "$steps" --junit "$work/junit.xml" \
        --bench "$work/featurizer.json" "$work/solver.json" --log "$log" || rc=$?
    echo "gpu_check.sh: ${SECONDS} s in all"
    return "$rc"
}

device_rc=0
step device 40 "$PYTHON" benchmarks/bench_gpu.py --device-info "$work/info.json" ||
    device_rc=$?
if ((device_rc == 3)); then
    echo "gpu_check.sh: no CUDA device: the CUDA tests and GPU benchmarks were not run" |
        tee -a "$log"
    collect || true
    exit 0
elif ((device_rc != 0)); then
    echo "gpu_check.sh: the device step failed (exit $device_rc)" | tee -a "$log"
    collect || true
    exit 1
fi

step tests 95 "$PYTHON" -m pytest -m cuda -q -p no:cacheprovider \
    --junitxml="$work/junit.xml" tests || true
step featurizer 70 "$PYTHON" benchmarks/bench_gpu.py --part featurizer \
    ${quick[@]+"${quick[@]}"} --json "$work/featurizer.json" || true
step solver 225 "$PYTHON" benchmarks/bench_gpu.py --part solver \
    ${quick[@]+"${quick[@]}"} --cpu-cap 170 --json "$work/solver.json" || true
collect
