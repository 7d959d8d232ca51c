"""Docstrings of the whole package: doctests pass, numpydoc sections are right.

* Every name in a module's ``__all__`` (private modules included) has a docstring
  whose documented parameters match its signature, and so do the public methods
  its classes define.
* Every name a public module exports (the API reference) shows an example.
* The doctests of every public module, and of every module that defines an
  exported name, pass.
"""

import doctest
import importlib
import inspect
import pkgutil

import pytest
from numpydoc.validate import validate

import skhead2toe

# PR01: a parameter is not documented; PR02: a documented one does not exist;
# GL08: no docstring; RT01: a function that returns has no Returns section.
PARAMETER_CODES = {"PR01", "PR02", "GL08", "RT01"}


def _module_names():
    names = ["skhead2toe"]
    for info in pkgutil.walk_packages(skhead2toe.__path__, "skhead2toe."):
        if not info.name.endswith("__main__"):  # importing it runs the CLI
            names.append(info.name)
    return sorted(names)


def _is_public(module_name):
    return not any(part.startswith("_") for part in module_name.split("."))


MODULES = _module_names()
PUBLIC_MODULES = [name for name in MODULES if _is_public(name)]


def _exported(module_names):
    """``{import path at the defining module: object}`` of the ``__all__`` names."""
    found = {}
    for name in module_names:
        module = importlib.import_module(name)
        for attr in getattr(module, "__all__", []):
            obj = getattr(module, attr)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            if obj.__module__.startswith("skhead2toe"):  # not a re-exported import
                found.setdefault(f"{obj.__module__}.{obj.__qualname__}", obj)
    return found


EXPORTED = _exported(MODULES)
API = _exported(PUBLIC_MODULES)


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


def test_the_modules_and_names_are_found():
    # a guard against the discovery silently finding nothing
    assert {"skhead2toe.linear_model", "skhead2toe.inspection"} <= set(PUBLIC_MODULES)
    assert "skhead2toe.linear_model._problem" in MODULES
    assert "skhead2toe.linear_model._group_lasso.GroupLassoClassifier" in API
    assert "skhead2toe.linear_model._problem.Problem" in EXPORTED


@pytest.mark.parametrize("path", sorted(EXPORTED))
def test_numpydoc_parameters(path):
    problems = []
    for name in _members(path, EXPORTED[path]):
        for code, message in validate(name)["errors"]:
            if code in PARAMETER_CODES:
                problems.append(f"{name}: {code} {message}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", sorted(API))
def test_public_names_show_an_example(path):
    codes = {code for code, _ in validate(path)["errors"]}
    assert "EX01" not in codes, f"{path} has no Examples section"


def _doctest_modules():
    return sorted({obj.__module__ for obj in EXPORTED.values()} | set(PUBLIC_MODULES))


@pytest.mark.parametrize("name", _doctest_modules())
def test_doctests(name):
    module = importlib.import_module(name)
    result = doctest.testmod(
        module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    assert result.failed == 0
