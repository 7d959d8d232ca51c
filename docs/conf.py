"""Sphinx configuration of the skhead2toe documentation."""

import os
import re
from datetime import date

# The gallery runs the examples in this process. One BLAS/OpenMP thread avoids
# oversubscribing small, shared machines (torch and numpy each start a pool);
# set OMP_NUM_THREADS yourself to override. Must happen before numpy/torch load.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import skhead2toe  # noqa: E402

project = "skhead2toe"
author = "The skhead2toe developers"
copyright = f"{date.today().year}, {author}"
version = release = skhead2toe.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "**.ipynb_checkpoints", "sg_execution_times.rst"]
root_doc = "index"

# -- API reference -----------------------------------------------------------
autosummary_generate = True
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# Parameter types become cross-references where they name a known object; every
# other word is left as text (this also keeps "shape (n_features_in_,)" literal).
numpydoc_xref_param_type = True
numpydoc_xref_ignore = "all"
# The docs are built offline, without intersphinx: numpydoc's default aliases that
# point to the Python and NumPy glossaries are replaced by plain object names.
numpydoc_xref_aliases = {
    name: name
    for name in [
        "None",
        "True",
        "False",
        "bool",
        "list",
        "tuple",
        "str",
        "dict",
        "float",
        "int",
        "callable",
        "iterable",
        "sequence",
        "generator",
        "array-like",
        "array_like",
        "ndarray",
        "scalar",
        "RandomState",
    ]
} | {
    "boolean": "bool",
    "string": "str",
    "BaseEstimator": "sklearn.base.BaseEstimator",
    "Pipeline": "sklearn.pipeline.Pipeline",
    "Bunch": "sklearn.utils.Bunch",
}

# -- Gallery -----------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": "/plot_",
    "doc_module": ("skhead2toe",),
    "backreferences_dir": "generated",
    "reference_url": {"skhead2toe": None},
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
}

# -- HTML --------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skhead2toe {version}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_static_path = []


# -- Docstring fixes -----------------------------------------------------------
# scikit-learn's metadata-routing helpers (set_*_request, get_metadata_routing)
# are generated on every estimator and refer to scikit-learn's own docs: skip them.
def _skip_member(app, what, name, obj, skip, options):
    if name == "get_metadata_routing" or re.fullmatch(r"set_\w+_request", name):
        return True
    return None


# A type such as "ndarray of shape (n_features_out_,)" is read by docutils as a
# link to a target "n_features_out"; escape the trailing underscore of such names
# outside literals and doctests.
_TRAILING_UNDERSCORE = re.compile(r"(?<![\w`\\])([A-Za-z]\w*)_(?=[,)])")


def _escape_shapes(app, what, name, obj, options, lines):
    for i, line in enumerate(lines):
        stripped = line.lstrip()
        if "``" in line or stripped.startswith((">>>", "...")):
            continue
        lines[i] = _TRAILING_UNDERSCORE.sub(r"\1\\_", line)


def setup(app):
    app.connect("autodoc-skip-member", _skip_member)
    app.connect("autodoc-process-docstring", _escape_shapes)
