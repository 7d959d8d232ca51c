"""Lazy attributes for packages (PEP 562): heavy modules load on first use."""

import importlib

__all__ = ["lazy_attributes"]


def lazy_attributes(namespace, modules):
    """Module-level ``__getattr__``, ``__dir__`` and ``__all__`` for lazy names.

    Parameters
    ----------
    namespace : dict
        The package's ``globals()``.
    modules : dict of str to sequence of str
        Each module (relative to the package, like ``".linear_model"``, or
        absolute) to the names it defines that the package exports.

    Returns
    -------
    getattr_, dir_ : callable
        Assign them to the package's ``__getattr__`` and ``__dir__``.
    names : list of str
        The exported names, sorted: the package's ``__all__``.

    Examples
    --------
    >>> namespace = {"__name__": "json"}
    >>> getattr_, dir_, names = lazy_attributes(namespace, {"json": ["dumps"]})
    >>> getattr_("dumps")({"a": 1})
    '{"a": 1}'
    >>> names, "dumps" in dir_()
    (['dumps'], True)
    """
    package = namespace["__name__"]
    names = {name: module for module, exported in modules.items() for name in exported}

    def getattr_(name):
        if name in names:
            module = importlib.import_module(names[name], package)
            return getattr(module, name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def dir_():
        return sorted(set(namespace) | set(names))

    return getattr_, dir_, sorted(names)
