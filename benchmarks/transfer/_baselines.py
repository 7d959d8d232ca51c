"""Reusable parts of the Head2Toe baselines benchmark (``run_baselines.py``).

- the tasks: digits, Fashion-MNIST-1k and low-domain-affinity variants built from
  them by fixed, label-preserving image transforms (:data:`VARIANTS`);
- the methods of Evci et al. (ICML 2022, Table 1) on shared features: Linear,
  Control, All layers + L2 / L1, Head2Toe, Head2Toe with layer-wise groups (the
  heads and their grids are those of :mod:`skhead2toe.experiments`, as in
  ``skhead2toe demo``);
- full fine-tuning of the backbone with a plain torch loop (:class:`FinetuneRecipe`,
  :func:`train_epochs`, :func:`fine_tune`);
- CPU / wall timers, the results table, the CSV / JSON writers and the
  gain-versus-affinity plot.
"""

import csv
import io
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from skhead2toe import experiments

TASK_BASES = experiments.DATASETS

# Methods, in table order.
LINEAR = experiments.LINEAR
CONTROL = "Control"
ALL_L2 = experiments.ALL_LAYERS
ALL_L1 = experiments.ALL_LAYERS_L1
HEAD2TOE = experiments.HEAD2TOE
HEAD2TOE_LAYERS = "Head2Toe (layer groups)"
FINETUNE = "Fine-tuning"
METHODS = (LINEAR, CONTROL, ALL_L2, ALL_L1, HEAD2TOE, HEAD2TOE_LAYERS, FINETUNE)
FEATURE_METHODS = (LINEAR, ALL_L2, ALL_L1, HEAD2TOE, HEAD2TOE_LAYERS)

CSV_COLUMNS = (
    "task",
    "method",
    "test_accuracy",
    "n_features",
    "cpu_s",
    "wall_s",
    "method_cpu_s",
    "extraction_cpu_s",
    "domain_affinity",
    "git_commit",
)


# --------------------------------------------------------------------- timing
class Timer:
    """Process CPU time (``time.process_time``) and wall time of a block.

    ``with Timer() as t: ...`` then ``t.cpu`` and ``t.wall`` in seconds. The CPU
    time is that of the whole process (every thread), so with one torch / BLAS
    thread it is close to the wall time on an idle machine, and it does not
    count other processes sharing the cores.
    """

    def __enter__(self):
        self._cpu = time.process_time()
        self._wall = time.perf_counter()
        self.cpu = self.wall = None
        return self

    def __exit__(self, *exc):
        self.cpu = time.process_time() - self._cpu
        self.wall = time.perf_counter() - self._wall
        return False


# ---------------------------------------------------------------------- tasks
def _grid_permutation(n, seed):
    """A fixed random permutation of ``range(n)`` with no fixed point (n > 1)."""
    rng = np.random.default_rng(seed)
    while True:
        perm = rng.permutation(n)
        if n < 2 or not np.any(perm == np.arange(n)):
            return perm


def block_shuffle(X, *, grid=4, seed=0):
    """Cut every image into a ``grid x grid`` array of blocks and permute them.

    The same permutation (drawn from ``seed``, without a fixed point) is applied
    to every image, so the task stays learnable: a pixel classifier sees the
    same information, while the global shape that ImageNet features encode is
    scrambled and the block seams add edges that no natural image has.

    Parameters
    ----------
    X : ndarray of shape (n, H, W)
        Images; ``H`` and ``W`` must be multiples of ``grid``.
    grid : int, default=4
        Blocks per side.
    seed : int, default=0
        Seed of the block permutation.

    Returns
    -------
    out : ndarray of shape (n, H, W)
        Block ``k`` (row-major) of ``out`` is block ``perm[k]`` of ``X``.
    """
    n, h, w = X.shape
    if h % grid or w % grid:
        raise ValueError(f"images of {h}x{w} px do not split into {grid}x{grid}")
    bh, bw = h // grid, w // grid
    blocks = X.reshape(n, grid, bh, grid, bw).transpose(0, 1, 3, 2, 4)
    blocks = blocks.reshape(n, grid * grid, bh, bw)
    perm = _grid_permutation(grid * grid, seed)
    out = blocks[:, perm].reshape(n, grid, grid, bh, bw).transpose(0, 1, 3, 2, 4)
    return np.ascontiguousarray(out.reshape(n, h, w))


def pixel_shuffle(X, *, seed=0):
    """Apply one fixed random permutation to the pixels of every image.

    A linear model on raw pixels is unchanged by it (it permutes the inputs),
    but all spatial structure is gone: the hardest case for a CNN pretrained on
    natural images.
    """
    n, h, w = X.shape
    perm = _grid_permutation(h * w, seed)
    return np.ascontiguousarray(X.reshape(n, h * w)[:, perm].reshape(n, h, w))


def invert(X):
    """Negative images (``255 - x`` for uint8)."""
    return (255 - X.astype(np.int16)).astype(X.dtype)


def rotate_invert(X):
    """Rotated by 90 degrees, then inverted."""
    return invert(np.ascontiguousarray(np.rot90(X, k=1, axes=(1, 2))))


#: Label-preserving transforms that make a task further from ImageNet. Each is
#: a fixed function of the image (the same for every image and for train and
#: test), so a from-scratch linear model on pixels loses nothing: ``invert`` is
#: affine and the others permute pixels.
VARIANTS = {
    "invert": invert,
    "rotate-invert": rotate_invert,
    "block-shuffle": block_shuffle,
    "pixel-shuffle": pixel_shuffle,
}


def split_task(name):
    """``"fashion-mnist+block-shuffle"`` -> ``("fashion-mnist", "block-shuffle")``."""
    base, _, variant = name.partition("+")
    if base not in TASK_BASES:
        raise ValueError(f"task {name!r}: base must be one of {TASK_BASES}")
    if variant and variant not in VARIANTS:
        raise ValueError(f"task {name!r}: variant must be one of {sorted(VARIANTS)}")
    return base, variant or None


def load_task(name, n_train, n_test, random_state=0):
    """Training and test images (uint8, (n, H, W)) and labels of a task.

    Parameters
    ----------
    name : str
        ``"digits"``, ``"fashion-mnist"``, or ``"<base>+<variant>"`` with a
        variant from :data:`VARIANTS` (e.g. ``"fashion-mnist+block-shuffle"``).
    n_train, n_test : int or None
        As in :func:`skhead2toe.experiments.load_task` (None test images: the
        rest of digits, or 2000 Fashion-MNIST test images).
    random_state : int, default=0
        Seed of the split / subsets.
    """
    base, variant = split_task(name)
    X_train, X_test, y_train, y_test = experiments.load_task(
        base, n_train, n_test, random_state
    )
    if variant is not None:
        X_train, X_test = VARIANTS[variant](X_train), VARIANTS[variant](X_test)
    return X_train, X_test, y_train, y_test


# ---------------------------------------------------------------- fine-tuning
@dataclass
class FinetuneRecipe:
    """The full fine-tuning recipe (every value is used by :func:`fine_tune`).

    SGD with Nesterov momentum, weight decay on the weights only (not on
    biases or batch-norm parameters), a linear warm-up over the first
    ``warmup_fraction`` of the steps then a cosine decay to zero, label
    smoothing, batch norm in training mode, and light augmentation: a random
    translation of up to ``max_shift`` pixels (edge-replicated) at the model
    resolution. No flips: they do not preserve digit labels nor the shuffled
    variants. The learning rate and the length of the schedule are chosen
    jointly from ``lrs`` x ``epochs`` by accuracy on a stratified
    ``val_fraction`` of the training set (ties go to the shorter schedule, then
    the smaller rate), then the model is trained again from the pretrained
    weights on the whole training set. The batches and the model are
    channels-last, the layout oneDNN runs fastest on CPU.

    With ``precise_bn`` the batch-norm running statistics are re-estimated at
    the end of training by one pass over the (unaugmented) training images
    ("precise BN"): with a few hundred steps of small batches the running
    averages lag the quickly changing weights, and the model in eval mode was
    much worse than in training mode (on 64 digit images at 32 px: loss 3.2 in
    eval mode against 1.0 with batch statistics).
    """

    lrs: tuple = (0.01, 0.03, 0.1)
    epochs: tuple = (3, 10)
    batch_size: int = 32
    momentum: float = 0.9
    weight_decay: float = 1e-5
    warmup_fraction: float = 0.1
    label_smoothing: float = 0.1
    max_shift: int = 8
    val_fraction: float = 0.2
    eval_batch_size: int = 100
    precise_bn: bool = True


def build_classifier(backbone, n_classes, *, pretrained=True, image_size=None, seed=0):
    """The backbone with a new, seeded linear head, and its data config."""
    import torch

    from skhead2toe.feature_extraction import build_backbone

    built = build_backbone(
        backbone, pretrained=pretrained, seed=seed, image_size=image_size
    )
    model = built.model
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model.reset_classifier(n_classes)
    model.to(memory_format=torch.channels_last)
    return model, built.data_config


def _model_input(X, data_config):
    """uint8 images (n, H, W) -> normalised float batch at the model resolution."""
    import torch

    from skhead2toe.feature_extraction import to_model_input

    x = torch.from_numpy(np.ascontiguousarray(X)).unsqueeze(1)
    return to_model_input(x, data_config, torch.device("cpu"), channels_last=True)


def _shift(x, max_shift, gen):
    """Random translation of each image by up to ``max_shift`` pixels."""
    import torch
    import torch.nn.functional as F

    if max_shift <= 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, mode="replicate")
    offsets = torch.randint(0, 2 * max_shift + 1, (n, 2), generator=gen)
    return torch.stack(
        [
            padded[i, :, dy : dy + h, dx : dx + w]
            for i, (dy, dx) in enumerate(offsets.tolist())
        ]
    )


def _lr_factor(step, total, warmup_fraction):
    warmup = max(1, int(round(warmup_fraction * total)))
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _epoch_grid(recipe):
    epochs = np.atleast_1d(recipe.epochs)
    if epochs.size == 0 or np.any(epochs < 1) or epochs.dtype.kind not in "iu":
        raise ValueError(
            f"recipe.epochs must be positive integers, got {recipe.epochs!r}."
        )
    return sorted(int(e) for e in epochs)


def train_epochs(model, X, y, data_config, *, lr, recipe, epochs=None, seed=0):
    """Train ``model`` in place on images ``X`` (uint8) and labels ``y``.

    ``epochs`` defaults to ``recipe.epochs``, which must then be one number.

    Returns
    -------
    losses : list of float
        Mean training loss of every epoch (with augmentation and label
        smoothing, as optimised).
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    y_t = torch.as_tensor(y, dtype=torch.long)
    if epochs is None:
        grid = _epoch_grid(recipe)
        if len(grid) > 1:
            raise ValueError(
                f"recipe.epochs is a grid {recipe.epochs!r}; pass epochs=."
            )
        epochs = grid[0]
    n, bs = len(y), recipe.batch_size
    n_batches = n // bs + (n % bs >= 2)  # a last batch of 1 breaks batch norm
    total = epochs * n_batches
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim > 1 else no_decay).append(p)
    opt = torch.optim.SGD(
        [
            {"params": decay, "weight_decay": recipe.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=lr,
        momentum=recipe.momentum,
        nesterov=True,
    )
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: _lr_factor(s, total, recipe.warmup_fraction)
    )
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    losses = []
    model.train()
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen).numpy()
        total_loss, seen = 0.0, 0
        for b in range(n_batches):
            idx = order[b * bs : (b + 1) * bs]
            x = _shift(_model_input(X[idx], data_config), recipe.max_shift, gen)
            loss = loss_fn(model(x), y_t[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total_loss += loss.item() * len(idx)
            seen += len(idx)
        losses.append(total_loss / seen)
    if recipe.precise_bn:
        recompute_bn_stats(model, X, data_config, recipe.eval_batch_size)
    model.eval()
    return losses


def recompute_bn_stats(model, X, data_config, batch_size=100):
    """Re-estimate batch-norm running statistics on images ``X`` (precise BN).

    Running mean and variance are reset and replaced by their averages over
    batches of ``X`` (``momentum=None``: cumulative averages), computed in
    training mode without gradients. The weights are not changed.
    """
    import torch

    bns = [
        m
        for m in model.modules()
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
    ]
    if not bns:
        return
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    try:
        with torch.no_grad():
            for start in range(0, len(X), batch_size):
                chunk = X[start : start + batch_size]
                if len(chunk) >= 2:
                    model(_model_input(chunk, data_config))
    finally:
        for m, mom in zip(bns, saved, strict=True):
            m.momentum = mom


def predict(model, X, data_config, batch_size=100):
    """Predicted class indices of uint8 images ``X``."""
    import torch

    model.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(X), batch_size):
            x = _model_input(X[start : start + batch_size], data_config)
            out.append(model(x).argmax(1).numpy())
    return np.concatenate(out)


@dataclass
class FinetuneResult:
    """What :func:`fine_tune` returns."""

    model: object
    data_config: dict
    lr: float
    epochs: int
    val_accuracy: dict = field(default_factory=dict)
    val_losses: dict = field(default_factory=dict)
    losses: list = field(default_factory=list)
    tuning_cpu_s: float = 0.0
    tuning_wall_s: float = 0.0
    final_cpu_s: float = 0.0
    final_wall_s: float = 0.0


def fine_tune(
    X,
    y,
    *,
    recipe=None,
    backbone="efficientnet_lite0",
    pretrained=True,
    image_size=None,
    seed=0,
    log=None,
):
    """Fine-tune the whole backbone with a new head, tuned on a held-out split.

    ``y`` holds class indices ``0 .. K-1``. The learning rate and the number of
    epochs are chosen from ``recipe.lrs`` x ``recipe.epochs`` by held-out
    accuracy (ties: fewer epochs, then the smaller rate). Every candidate and the
    final model start from the same pretrained weights and the same seeded head.
    """
    from sklearn.model_selection import train_test_split

    recipe = recipe or FinetuneRecipe()
    n_classes = int(np.max(y)) + 1
    idx_fit, idx_val = train_test_split(
        np.arange(len(y)),
        test_size=recipe.val_fraction,
        stratify=y,
        random_state=seed,
    )
    grid = [(lr, e) for e in _epoch_grid(recipe) for lr in sorted(recipe.lrs)]
    val_acc, val_losses = {}, {}
    with Timer() as tuning:
        for lr, epochs in grid:
            model, cfg = build_classifier(
                backbone,
                n_classes,
                pretrained=pretrained,
                image_size=image_size,
                seed=seed,
            )
            val_losses[lr, epochs] = train_epochs(
                model,
                X[idx_fit],
                y[idx_fit],
                cfg,
                lr=lr,
                recipe=recipe,
                epochs=epochs,
                seed=seed,
            )
            pred = predict(model, X[idx_val], cfg, recipe.eval_batch_size)
            val_acc[lr, epochs] = float(np.mean(pred == y[idx_val]))
            if log:
                log(
                    f"fine-tuning lr={lr:g}, {epochs} epochs: held-out accuracy "
                    f"{val_acc[lr, epochs]:.4f}"
                )
    best_lr, best_epochs = max(grid, key=lambda k: val_acc[k])  # ties: the first
    with Timer() as final:
        model, cfg = build_classifier(
            backbone, n_classes, pretrained=pretrained, image_size=image_size, seed=seed
        )
        losses = train_epochs(
            model, X, y, cfg, lr=best_lr, recipe=recipe, epochs=best_epochs, seed=seed
        )
    return FinetuneResult(
        model=model,
        data_config=cfg,
        lr=best_lr,
        epochs=best_epochs,
        val_accuracy=val_acc,
        val_losses=val_losses,
        losses=losses,
        tuning_cpu_s=tuning.cpu,
        tuning_wall_s=tuning.wall,
        final_cpu_s=final.cpu,
        final_wall_s=final.wall,
    )


# -------------------------------------------------------------------- methods
@dataclass
class Config:
    """Everything a run of the benchmark depends on (recorded in the JSON)."""

    backbone: str = "efficientnet_lite0"
    pretrained: bool = True
    image_size: int = 128
    target_size: int = 1024
    n_train: int = 1000
    n_test: int | None = None
    cv: int = 3
    l2_Cs: tuple = experiments.PROBE_CS
    l1_Cs: tuple = experiments.L1_CS
    l1_tol: float = 1e-3
    h2t_alphas: int = experiments.N_ALPHAS
    h2t_keep_fractions: tuple = experiments.KEEP_FRACTIONS
    control_seeds: tuple = (1, 2)
    recipe: FinetuneRecipe = field(default_factory=FinetuneRecipe)
    random_state: int = 0

    def to_dict(self):
        return asdict(self)

    def featurizer(self):
        """The benchmarks' unfitted ``MultiLayerFeaturizer``, as this config says."""
        from skhead2toe import MultiLayerFeaturizer

        return MultiLayerFeaturizer(
            self.backbone,
            pretrained=self.pretrained,
            image_size=self.image_size,
            target_size=self.target_size,
            progress=False,
            random_state=self.random_state,
        )


def _l2_probe(cfg):
    """The Linear / All layers + L2 probe of :mod:`skhead2toe.experiments`."""
    return experiments.l2_probe(Cs=cfg.l2_Cs, cv=cfg.cv)


def _l1_probe(cfg):
    """The All layers + L1 probe of :mod:`skhead2toe.experiments`."""
    return experiments.l1_probe(Cs=cfg.l1_Cs, cv=cfg.cv, tol=cfg.l1_tol)


def _l1_used(est):
    """Features with a non-zero weight for some class."""
    coef = np.vstack([e.coef_ for e in est.best_estimator_.estimators_])
    return int(np.any(coef != 0, axis=0).sum())


def _head2toe(cfg, groups=None):
    """The Head2Toe head of :mod:`skhead2toe.experiments` (``groups``: per layer)."""
    return experiments.head2toe_cv(
        alphas=cfg.h2t_alphas,
        keep_fractions=cfg.h2t_keep_fractions,
        groups=groups,
        cv=cfg.cv,
        random_state=cfg.random_state,
    )


def _quiet_fit(est, X, y):
    """Fit, counting (not raising) convergence warnings; returns their number."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        est.fit(X, y)
    return sum(issubclass(w.category, ConvergenceWarning) for w in caught)


def _row(method, accuracy, n_features, method_timer, extraction=None, **extra):
    ext_cpu = extraction.cpu if extraction is not None else 0.0
    ext_wall = extraction.wall if extraction is not None else 0.0
    return {
        "method": method,
        "test_accuracy": float(accuracy),
        "n_features": int(n_features),
        "cpu_s": round(method_timer.cpu + ext_cpu, 2),
        "wall_s": round(method_timer.wall + ext_wall, 2),
        "method_cpu_s": round(method_timer.cpu, 2),
        "extraction_cpu_s": round(ext_cpu, 2),
        **extra,
    }


def _append(log, task, rows, row):
    rows.append(row)
    log(
        f"{task}: {row['method']}: accuracy {row['test_accuracy']:.4f}, "
        f"{row['method_cpu_s']:.1f} s CPU (+ {row['extraction_cpu_s']:.1f} s "
        "extraction)"
    )


def run_task(task, cfg, *, methods=METHODS, log=print):
    """Every method of :data:`METHODS` on one task; returns the task's results."""
    from sklearn.base import clone

    from skhead2toe.inspection import domain_affinity, random_weights_featurizer
    from skhead2toe.linear_model import LinearProbe

    X_train, X_test, y_train, y_test = load_task(
        task, cfg.n_train, cfg.n_test, cfg.random_state
    )
    classes, y_train_i = np.unique(y_train, return_inverse=True)
    y_test_i = np.searchsorted(classes, y_test)
    log(f"{task}: {len(y_train)} training / {len(y_test)} test images")
    feat = cfg.featurizer()
    with Timer() as extraction:
        Z_train = feat.fit_transform(X_train)
        Z_test = feat.transform(X_test)
    log(f"{task}: extraction {extraction.cpu:.1f} s CPU, {Z_train.shape[1]} features")
    groups = feat.feature_groups_
    last = experiments.last_layer_mask(groups)
    rows, details = [], {}

    with Timer() as t:
        linear = _l2_probe(cfg).fit(Z_train[:, last], y_train_i)
    _append(
        log,
        task,
        rows,
        _row(
            LINEAR,
            linear.score(Z_test[:, last], y_test_i),
            last.sum(),
            t,
            extraction,
            C=linear.C_,
        ),
    )
    details["linear_C"] = linear.C_

    if CONTROL in methods:
        with Timer() as t:
            parts_train, parts_test = [], []
            for seed in cfg.control_seeds:
                control = random_weights_featurizer(
                    clone(feat).set_params(layers="last"), random_state=seed
                )
                parts_train.append(control.fit_transform(X_train))
                parts_test.append(control.transform(X_test))
            C_train, C_test = np.hstack(parts_train), np.hstack(parts_test)
            ctrl = _l2_probe(cfg).fit(C_train, y_train_i)
        _append(
            log,
            task,
            rows,
            _row(
                CONTROL,
                ctrl.score(C_test, y_test_i),
                C_train.shape[1],
                t,
                C=ctrl.C_,
            ),
        )

    if ALL_L2 in methods:
        with Timer() as t:
            every = _l2_probe(cfg).fit(Z_train, y_train_i)
        _append(
            log,
            task,
            rows,
            _row(
                ALL_L2,
                every.score(Z_test, y_test_i),
                Z_train.shape[1],
                t,
                extraction,
                C=every.C_,
            ),
        )

    if ALL_L1 in methods:
        with Timer() as t:
            l1 = _l1_probe(cfg)
            warned = _quiet_fit(l1, Z_train, y_train_i)
        used = _l1_used(l1)
        _append(
            log,
            task,
            rows,
            _row(
                ALL_L1,
                l1.score(Z_test, y_test_i),
                used,
                t,
                extraction,
                C=l1.best_params_["estimator__C"],
                convergence_warnings=warned,
            ),
        )

    for name, grp in ((HEAD2TOE, None), (HEAD2TOE_LAYERS, groups)):
        if name not in methods:
            continue
        with Timer() as t:
            head = _head2toe(cfg, grp)
            warned = _quiet_fit(head, Z_train, y_train_i)
        sel = head.selected_features_
        _append(
            log,
            task,
            rows,
            _row(
                name,
                head.score(Z_test, y_test_i),
                sel.sum(),
                t,
                extraction,
                alpha_over_alpha_max=float(head.alpha_ / head.alphas_[0]),
                keep_fraction=head.keep_fraction_,
                refit_l2=head.refit_l2_,
                n_layers_used=int(len(np.unique(groups[sel]))),
                convergence_warnings=warned,
            ),
        )

    if FINETUNE in methods:
        with Timer() as t:
            ft = fine_tune(
                X_train,
                y_train_i,
                recipe=cfg.recipe,
                backbone=cfg.backbone,
                pretrained=cfg.pretrained,
                image_size=cfg.image_size,
                seed=cfg.random_state,
                log=lambda m: log(f"{task}: {m}"),
            )
            pred = predict(ft.model, X_test, ft.data_config, cfg.recipe.eval_batch_size)
        _append(
            log,
            task,
            rows,
            _row(
                FINETUNE,
                np.mean(pred == y_test_i),
                last.sum(),
                t,
                lr=ft.lr,
                epochs=ft.epochs,
                tuning_cpu_s=round(ft.tuning_cpu_s, 2),
                final_training_cpu_s=round(ft.final_cpu_s, 2),
                val_accuracy={
                    f"lr={lr:g}, epochs={e}": v
                    for (lr, e), v in ft.val_accuracy.items()
                },
                train_losses=[round(v, 4) for v in ft.losses],
            ),
        )

    with Timer() as t:
        aff = domain_affinity(
            Z_train[:, last],
            y_train_i,
            X_scratch=X_train.reshape(len(X_train), -1) / 255.0,
            estimator=LinearProbe(C=linear.C_),
            cv=cfg.cv,
        )
    for r in rows:
        log(
            f"{task}: {r['method']:24s} acc {r['test_accuracy']:.4f} "
            f"features {r['n_features']:6d} cpu {r['cpu_s']:8.1f} s"
        )
    log(f"{task}: domain affinity {aff.affinity:+.4f}")
    return {
        "task": task,
        "n_train": int(len(y_train)),
        "n_test": int(len(y_test)),
        "n_classes": int(len(classes)),
        "image_size": int(feat.data_config_["image_size"]),
        "backbone": feat.backbone_tag_,
        "weights": feat.weights_,
        "n_features": int(Z_train.shape[1]),
        "n_layers": int(len(feat.layer_names_)),
        "extraction_cpu_s": round(extraction.cpu, 2),
        "extraction_wall_s": round(extraction.wall, 2),
        "domain_affinity": {
            "affinity": float(aff.affinity),
            "linear_probe_cv_accuracy": float(aff.linear_score),
            "from_scratch_cv_accuracy": float(aff.scratch_score),
            "from_scratch_model": "the tuned linear probe on raw pixels",
            "cpu_s": round(t.cpu, 2),
        },
        "methods": rows,
    }


# --------------------------------------------------------------- summaries
def _method_row(task_result, method):
    for r in task_result["methods"]:
        if r["method"] == method:
            return r
    return None


def summarize(tasks):
    """Means over tasks per method, and the two targets of the issue."""
    summary = {}
    for m in METHODS:
        rows = [_method_row(t, m) for t in tasks]
        if not rows or any(r is None for r in rows):
            continue
        summary[m] = {
            "mean_test_accuracy": float(np.mean([r["test_accuracy"] for r in rows])),
            "total_cpu_s": round(float(sum(r["cpu_s"] for r in rows)), 2),
        }
    targets = {}
    if HEAD2TOE in summary and FINETUNE in summary:
        h, f = summary[HEAD2TOE], summary[FINETUNE]
        ratios = [
            _method_row(t, FINETUNE)["cpu_s"] / _method_row(t, HEAD2TOE)["cpu_s"]
            for t in tasks
        ]
        targets = {
            "head2toe_minus_finetune_mean_accuracy": h["mean_test_accuracy"]
            - f["mean_test_accuracy"],
            "accuracy_target_met": bool(
                h["mean_test_accuracy"] >= f["mean_test_accuracy"]
            ),
            "finetune_over_head2toe_cpu": f["total_cpu_s"] / h["total_cpu_s"],
            "finetune_over_head2toe_cpu_per_task": [round(r, 2) for r in ratios],
            "cpu_target_met": bool(f["total_cpu_s"] >= 10 * h["total_cpu_s"]),
        }
    gains = [
        (
            t["domain_affinity"]["affinity"],
            _method_row(t, HEAD2TOE)["test_accuracy"]
            - _method_row(t, LINEAR)["test_accuracy"],
        )
        for t in tasks
        if _method_row(t, HEAD2TOE) and _method_row(t, LINEAR)
    ]
    corr = None
    if len(gains) >= 3:
        a, g = np.array(gains).T
        if a.std() > 0 and g.std() > 0:
            corr = float(np.corrcoef(a, g)[0, 1])
    return {"methods": summary, "targets": targets, "gain_affinity_pearson_r": corr}


def csv_rows(tasks, git_commit=None):
    """One flat row per (task, method) with :data:`CSV_COLUMNS`.

    ``git_commit`` is the commit of rows that do not record their own (merged
    runs do, see ``run_baselines.merge_tasks``).
    """
    rows = []
    for t in tasks:
        for r in t["methods"]:
            rows.append(
                {
                    "task": t["task"],
                    "method": r["method"],
                    "test_accuracy": round(r["test_accuracy"], 4),
                    "n_features": r["n_features"],
                    "cpu_s": r["cpu_s"],
                    "wall_s": r["wall_s"],
                    "method_cpu_s": r["method_cpu_s"],
                    "extraction_cpu_s": r["extraction_cpu_s"],
                    "domain_affinity": round(t["domain_affinity"]["affinity"], 4),
                    "git_commit": r.get("git_commit", git_commit) or "",
                },
            )
    return rows


def format_table(results):
    """A plain-text table: one line per method, accuracy / features / CPU per task."""
    tasks = results["tasks"]
    head = f"{'method':24s}" + "".join(f" | {t['task'][:30]:>30s}" for t in tasks)
    sub = f"{'':24s}" + "".join(
        f" | {'acc':>7s} {'feats':>7s} {'cpu s':>14s}" for _ in tasks
    )
    lines = [head, sub]
    for m in METHODS:
        cells = []
        for t in tasks:
            r = _method_row(t, m)
            if r is None:
                cells.append(f" | {'-':>30s}")
            else:
                cells.append(
                    f" | {r['test_accuracy']:7.4f} {r['n_features']:7d} "
                    f"{r['cpu_s']:14.1f}"
                )
        lines.append(f"{m:24s}" + "".join(cells))
    lines.append(
        f"{'domain affinity':24s}"
        + "".join(f" | {t['domain_affinity']['affinity']:+30.4f}" for t in tasks)
    )
    s = results.get("summary", {})
    for m, v in s.get("methods", {}).items():
        lines.append(
            f"mean over tasks  {m:24s} acc {v['mean_test_accuracy']:.4f}  "
            f"total cpu {v['total_cpu_s']:.1f} s"
        )
    if s.get("targets"):
        tg = s["targets"]
        lines.append(
            f"Head2Toe - fine-tuning mean accuracy: "
            f"{tg['head2toe_minus_finetune_mean_accuracy']:+.4f} "
            f"(target >= 0: {'met' if tg['accuracy_target_met'] else 'missed'}); "
            f"fine-tuning / Head2Toe CPU: {tg['finetune_over_head2toe_cpu']:.1f}x "
            f"(target >= 10x: {'met' if tg['cpu_target_met'] else 'missed'})"
        )
    if s.get("gain_affinity_pearson_r") is not None:
        lines.append(
            "Pearson r (Head2Toe - Linear gain, domain affinity): "
            f"{s['gain_affinity_pearson_r']:+.3f}"
        )
    return "\n".join(lines)


# ------------------------------------------------------------------- outputs
def write_csv(path, rows, columns=CSV_COLUMNS):
    """Write dict rows as CSV, atomically."""
    from skhead2toe._io import atomic_write

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    data = buf.getvalue().encode()
    atomic_write(Path(path), lambda f: f.write(data), suffix=".csv")


def write_json(path, obj):
    """Write JSON, atomically."""
    from skhead2toe._io import atomic_write

    data = (json.dumps(obj, indent=2, default=_json_default) + "\n").encode()
    atomic_write(Path(path), lambda f: f.write(data), suffix=".json")


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def plot_gain_vs_affinity(results, path):
    """Head2Toe minus Linear test accuracy against domain affinity, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from skhead2toe._io import atomic_write

    tasks = results["tasks"]
    fig, ax = plt.subplots(figsize=(6, 4.2), layout="constrained")
    for method, marker in ((HEAD2TOE, "o"), (HEAD2TOE_LAYERS, "s")):
        pts = [
            (
                t["domain_affinity"]["affinity"] * 100,
                (
                    _method_row(t, method)["test_accuracy"]
                    - _method_row(t, LINEAR)["test_accuracy"]
                )
                * 100,
                t["task"],
            )
            for t in tasks
            if _method_row(t, method) and _method_row(t, LINEAR)
        ]
        if not pts:
            continue
        x, y, names = zip(*pts, strict=True)
        ax.scatter(x, y, marker=marker, s=60, label=f"{method} - Linear")
        if method == HEAD2TOE:
            for xi, yi, name in pts:
                ax.annotate(name, (xi, yi), textcoords="offset points", xytext=(6, 4))
            if len(pts) >= 2 and np.std(x) > 0:
                slope, icpt = np.polyfit(x, y, 1)
                xs = np.linspace(min(x), max(x), 2)
                ax.plot(xs, slope * xs + icpt, "--", color="C0", lw=1)
    ax.axhline(0, color="grey", lw=0.8)
    r = results.get("summary", {}).get("gain_affinity_pearson_r")
    title = "Gain over the linear probe vs domain affinity"
    if r is not None:
        title += f" (Pearson r = {r:+.2f})"
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("domain affinity (linear probe - pixels probe, CV accuracy, points)")
    ax.set_ylabel("test accuracy gain over Linear (points)")
    ax.legend(fontsize=8)
    try:
        atomic_write(
            Path(path), lambda f: fig.savefig(f, format="png", dpi=120), suffix=".png"
        )
    finally:
        plt.close(fig)
