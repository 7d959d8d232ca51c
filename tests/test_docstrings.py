"""Every public module: its doctests pass and its numpydoc parameters match."""

import doctest
import importlib
import inspect
import pkgutil

import pytest
from numpydoc.validate import validate

import skhead2toe

# Documented parameters must match the signature (PR01: a parameter is not
# documented, PR02: a documented one does not exist), and every public object
# needs a docstring (GL08).
CHECKED_CODES = {"PR01", "PR02", "GL08"}


def _public_modules():
    """Modules of skhead2toe with no underscore in their dotted path."""
    names = ["skhead2toe"]
    for info in pkgutil.walk_packages(skhead2toe.__path__, "skhead2toe."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


PUBLIC_MODULES = _public_modules()


def _public_objects():
    """``(import path, object)`` of every public name, at its defining module."""
    seen = {}
    for name in PUBLIC_MODULES:
        module = importlib.import_module(name)
        for attr in getattr(module, "__all__", []):
            obj = getattr(module, attr)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            if not obj.__module__.startswith("skhead2toe"):
                continue  # a re-exported third-party name
            seen.setdefault(f"{obj.__module__}.{obj.__qualname__}", obj)
    return seen


PUBLIC_OBJECTS = _public_objects()


def _members(path, obj):
    """The object and, for a class, the public methods it defines itself."""
    yield path
    if inspect.isclass(obj):
        for name, member in vars(obj).items():
            if name.startswith("_"):
                continue
            if isinstance(member, (classmethod, staticmethod)):
                member = member.__func__
            if inspect.isfunction(member):
                yield f"{path}.{name}"


def test_the_public_modules_are_found():
    # a guard against the discovery silently finding nothing
    for name in ("skhead2toe.linear_model", "skhead2toe.inspection"):
        assert name in PUBLIC_MODULES
    assert "skhead2toe.linear_model._group_lasso.GroupLassoClassifier" in (
        PUBLIC_OBJECTS
    )


@pytest.mark.parametrize("path", sorted(PUBLIC_OBJECTS))
def test_numpydoc_parameters(path):
    problems = []
    for name in _members(path, PUBLIC_OBJECTS[path]):
        for code, message in validate(name)["errors"]:
            if code in CHECKED_CODES:
                problems.append(f"{name}: {code} {message}")
    assert not problems, "\n".join(problems)


def _doctest_modules():
    """Every module that defines a public object, or is itself public."""
    defining = {obj.__module__ for obj in PUBLIC_OBJECTS.values()}
    return sorted(defining | set(PUBLIC_MODULES))


@pytest.mark.parametrize("name", _doctest_modules())
def test_doctests(name):
    module = importlib.import_module(name)
    result = doctest.testmod(
        module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    assert result.failed == 0
