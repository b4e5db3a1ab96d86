"""Sphinx configuration: the API reference from the docstrings (autodoc + napoleon, Google
style), the tutorials rendered with their stored outputs (MyST-NB, no execution), and pages
that include the README's sections, so the site and the README never disagree.

    sphinx-build -W -b html docs docs/_build/html
"""

from __future__ import annotations

import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

project = "pyro_ar"
author = "pyro_ar developers"
copyright = "pyro_ar developers, Apache-2.0"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "myst_nb",
]

# the tutorials live in tutorials/ (the test suite runs them there): copy them in
_tutorials = HERE / "tutorials"
_tutorials.mkdir(exist_ok=True)
for notebook in sorted((ROOT / "tutorials").glob("*.ipynb")):
    shutil.copyfile(notebook, _tutorials / notebook.name)

nb_execution_mode = "off"  # render the outputs stored in the notebooks
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]  # README sections start at level 2

autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_typehints = "description"
autodoc_mock_imports: list[str] = []
napoleon_google_docstring = True
napoleon_numpy_docstring = False

exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
html_theme = "furo"
html_title = "pyro_ar"
