"""A backbone cut after its last used tap, with the taps pooled inside the graph.

The backbone is traced with :mod:`torch.fx` (timm's leaf modules and functions
are kept whole, as in timm's own fx feature extraction). While it is traced,
every module call goes through :meth:`_TapTracer.call_module`: the first call
of a tapped module gets one :class:`TapColumns` node per tap *right after its
output*, so the output is pooled before any later operation runs (an in-place
``ReLU`` after the tap cannot change it, as in the featurizer's hooks, which
pool inside the forward pass too). The graph then returns the taps' columns,
and every node after the last tap is erased: the blocks that no kept feature
needs are neither run nor stored (:class:`torch.fx.GraphModule` copies only the
submodules its graph calls).

Only nodes *after* the last tap are removed, and in reverse order, so nothing
that runs before a tap changes: fx's general dead-code elimination is not used,
since it may drop in-place operations whose effect is needed.
"""

import sys

import torch
from torch import fx, nn

from ..feature_extraction._hooks import forward, pool_output, unit_normalize

__all__ = ["TapColumns", "truncated_backbone"]


class TapColumns(nn.Module):
    """Pool one tapped output as the featurizer does, keep some of its columns.

    Parameters
    ----------
    target_size : int
        Target size of the tap (see
        :func:`~skhead2toe.feature_extraction._hooks.pool_output`).
    unit : bool
        Whether the pooled vector is scaled to unit L2 norm per image.
    n_prefix : int
        Prefix tokens of a token output.
    cls_token : {"pool", "only", "separate"}
        See :func:`~skhead2toe.feature_extraction._hooks.pool_output`.
    index : array-like of int
        Columns of the pooled (and normalised) vector that are kept, in order.
    """

    def __init__(self, target_size, unit, n_prefix, cls_token, index):
        super().__init__()
        self.target_size = int(target_size)
        self.unit = bool(unit)
        self.n_prefix = int(n_prefix)
        self.cls_token = str(cls_token)
        self.register_buffer("index", torch.as_tensor(index, dtype=torch.int64))

    def forward(self, output):
        """The kept columns of one module output.

        Parameters
        ----------
        output : torch.Tensor
            The tapped module's output, ``(N, C)``, ``(N, T, C)`` or
            ``(N, C, H, W)``.

        Returns
        -------
        columns : torch.Tensor of shape (N, len(index))
            float32 columns, as in the featurizer's output.
        """
        pooled = pool_output(
            output, self.target_size, n_prefix=self.n_prefix, cls_token=self.cls_token
        ).float()
        if self.unit:
            pooled = unit_normalize(pooled)
        return pooled.index_select(1, self.index)


class _NotATensor(TypeError):
    """A tapped module whose traced output is not one tensor."""


class _Network(nn.Module):
    """The root that is traced: the featurizer's forward and the tap modules."""

    def __init__(self, model, taps, pre_logits):
        super().__init__()
        self.model = model
        self.taps = nn.ModuleList(taps)
        self.pre_logits = pre_logits

    def forward(self, x):
        return forward(self.model, x, pre_logits=self.pre_logits)


def _timm_notrace():
    """Module types and functions timm keeps whole when it traces with fx."""
    from timm.layers import get_notrace_functions, get_notrace_modules

    return tuple(get_notrace_modules()), tuple(get_notrace_functions())


def _code_modules(network):
    """The Python modules of the network's classes, and timm's loaded modules."""
    names = {
        cls.__module__
        for module in network.modules()
        for cls in type(module).__mro__
        if cls.__module__.split(".")[0] not in ("torch", "builtins")
    }
    names |= {name for name in sys.modules if name.split(".")[0] == "timm"}
    return [sys.modules[name] for name in sorted(names) if name in sys.modules]


class _TapTracer(fx.Tracer):
    """fx tracer that appends the tap nodes right after each tapped module.

    timm's no-trace functions are kept whole wherever the network's code calls
    them: fx looks for them only in the globals of the root's ``forward`` (and
    of ``autowrap_modules``, whose every function it would wrap too), so the
    Python modules defining the network's classes, and timm's, are added to
    the modules it searches.

    Parameters
    ----------
    wanted : dict of str to list of int
        Qualified module name (under the traced root) to the indices, in
        ``root.taps``, of its taps.
    network : torch.nn.Module
        The network whose classes' modules are searched for no-trace functions.
    """

    def __init__(self, wanted, network):
        leaf_types, functions = _timm_notrace()
        super().__init__(autowrap_functions=functions)
        # fx's list of modules whose globals it patches (torch >= 1.10)
        self._autowrap_search = [*self._autowrap_search, *_code_modules(network)]
        self.leaf_types = (TapColumns, *leaf_types)
        self.wanted = wanted
        self.tap_nodes = {}

    def is_leaf_module(self, m, module_qualified_name):
        """Tap modules and timm's no-trace modules are leaves (and torch.nn's).

        Parameters
        ----------
        m : torch.nn.Module
            A module met while tracing.
        module_qualified_name : str
            Its name under the root.

        Returns
        -------
        leaf : bool
            Whether the module is recorded as one node.
        """
        if isinstance(m, self.leaf_types):
            return True
        return super().is_leaf_module(m, module_qualified_name)

    def call_module(self, m, forward, args, kwargs):
        """Trace one module call; pool its output at once if it is tapped.

        Parameters
        ----------
        m : torch.nn.Module
            The module called.
        forward : callable
            Its forward method.
        args, kwargs : tuple, dict
            The call's arguments.

        Returns
        -------
        output : Any
            The module's traced output.
        """
        output = super().call_module(m, forward, args, kwargs)
        name = self.path_of_module(m)
        if name in self.wanted and name not in self.tap_nodes:
            self.tap_nodes[name] = self._tap(name, output)  # first call only
        return output

    def _tap(self, name, output):
        if not isinstance(output, fx.Proxy):
            raise _NotATensor(
                f"layer {name.removeprefix('model.')!r} returned "
                f"{type(output).__name__} when traced, not one tensor"
            )
        return [
            self.create_proxy("call_module", f"taps.{i}", (output,), {}).node
            for i in self.wanted[name]
        ]


def truncated_backbone(model, names, taps, *, pre_logits):
    """The backbone cut after its last needed tap; it returns the taps' columns.

    Parameters
    ----------
    model : torch.nn.Module
        The network (it becomes a part of the result: pass a copy).
    names : list of str
        Tapped module name of each tap (``"pre_logits"`` for the pooled head
        input).
    taps : list of TapColumns
        One per name, in the order of the returned columns.
    pre_logits : bool
        Run ``forward_head(forward_features(x), pre_logits=True)`` as the
        featurizer does when it taps ``"pre_logits"``, instead of ``model(x)``.

    Returns
    -------
    backbone : torch.fx.GraphModule
        Maps a normalised batch to a tuple of tensors, one per tap.

    Raises
    ------
    TypeError
        If the network cannot be traced by :mod:`torch.fx`, or a tapped module
        does not return one tensor.
    """
    root = _Network(model, taps, pre_logits).eval()
    wanted = {}
    for i, name in enumerate(names):
        if name != "pre_logits":
            wanted.setdefault(f"model.{name}", []).append(i)
    tracer = _TapTracer(wanted, model)
    try:
        graph = tracer.trace(root)
    except _NotATensor:
        raise
    except Exception as exc:  # fx raises many types (TraceError, NameError...)
        raise _untraceable(model, exc) from exc
    nodes = _tap_nodes(graph, tracer, names)
    _truncate(graph, nodes)
    return fx.GraphModule(root, graph, class_name="TruncatedBackbone")


def _untraceable(model, exc):
    return TypeError(
        f"cannot export the backbone {type(model).__name__}: torch.fx cannot trace "
        f"it ({type(exc).__name__}: {exc}). Export needs a network whose forward "
        "has no data-dependent Python control flow (timm models qualify); tap "
        "modules of a traceable part, or make the network traceable."
    )


def _tap_nodes(graph, tracer, names):
    """The node of every tap, in tap order (the ``pre_logits`` ones added)."""
    output = next(n for n in reversed(graph.nodes) if n.op == "output")
    head = [i for i, name in enumerate(names) if name == "pre_logits"]
    nodes = [None] * len(names)
    if head:
        result = output.args[0]
        with graph.inserting_before(output):
            for i in head:
                nodes[i] = graph.call_module(f"taps.{i}", (result,))
    for name, tap_nodes in tracer.tap_nodes.items():
        for i, node in zip(tracer.wanted[name], tap_nodes, strict=True):
            nodes[i] = node
    missing = [names[i] for i, node in enumerate(nodes) if node is None]
    if missing:
        raise TypeError(
            f"layers {missing} were never called when the network was traced"
        )
    return nodes


def _truncate(graph, tap_nodes):
    """Return the tap nodes; erase every node after the last of them."""
    order = {node: k for k, node in enumerate(graph.nodes)}
    output = next(n for n in reversed(graph.nodes) if n.op == "output")
    output.args = (tuple(tap_nodes),)
    last = max((order[n] for n in tap_nodes), default=-1)
    for node in reversed(list(graph.nodes)):
        if node is not output and order[node] > last and node.op != "placeholder":
            graph.erase_node(node)
    graph.lint()
