"""The summary table of ``bench_solvers.py``: seconds to target, and ratios."""


def _peer_ratio(peer, best):
    """A peer's time to target over our fastest (``>`` when it missed it)."""
    if not peer or not best:
        return "-"
    return ("" if peer[2] else ">") + f"{peer[0] / best:.1f}"


def _lr_ratio(best, entry):
    """Our fastest time to target over one default-tol LogisticRegression."""
    lr = entry.get("sklearn-LR-default")
    return f"{best / lr:.2f}" if best and lr else "-"


def print_summary(summaries, target):
    print(f"\n=== Time to relative suboptimality <= {target:g} (seconds)")
    head = (
        f"{'problem':<26}{'a/amax':>7}{'newton':>9}{'fista':>9}{'torch':>9}"
        f"{'glm-1':>9}"
        f"{'glm-path':>9}{'glm/ours':>9}{'grplasso':>18}{'gl/ours':>9}"
        f"{'LR':>8}{'path/1':>7}{'ours/LR':>8}{'adelie':>9}{'ad/ours':>8}"
    )
    print(head)

    def fmt(v):
        if v is None:
            return "-"
        s, sub, ok = v
        return f"{s:.2f}" if ok else f">{s:.1f}"

    for e in summaries:
        ours = [
            v[0]
            for k, v in e.items()
            if k.startswith("ours-") and v[2] and k.endswith("cpu")
        ]
        best = min(ours) if ours else None
        glm = [e[k][0] for k in ("glmnet-single", "glmnet-path") if k in e and e[k][2]]
        glm_ratio = f"{min(glm) / best:.1f}" if glm and best else "-"
        gl = e.get("group-lasso")
        gl_txt, gl_ratio = "-", "-"
        if gl:
            gl_txt = f"{gl[0]:.1f} ({gl[1]:.0e})" if not gl[2] else f"{gl[0]:.2f}"
            if best:
                gl_ratio = (">" if not gl[2] else "") + f"{gl[0] / best:.0f}"
        torch_cpu = e.get("ours-torch-cpu")
        pr = e.get("path-ratio")
        print(
            f"{e['problem']:<26}{e['frac']:>7g}{fmt(e.get('ours-newton-cpu')):>9}"
            f"{fmt(e.get('ours-fista-cpu')):>9}"
            f"{fmt(torch_cpu):>9}{fmt(e.get('glmnet-single')):>9}"
            f"{fmt(e.get('glmnet-path')):>9}{glm_ratio:>9}{gl_txt:>18}"
            f"{gl_ratio:>9}{fmt(e.get('sklearn-LR')):>8}"
            f"{(f'{pr:.2f}' if pr else '-'):>7}{_lr_ratio(best, e):>8}"
            f"{fmt(e.get('adelie')):>9}{_peer_ratio(e.get('adelie'), best):>8}"
        )
        if "ours-torch-cuda" in e:
            print(f"{'':<26}{'':>7}  torch-cuda: {fmt(e['ours-torch-cuda'])}")
