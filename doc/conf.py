# Sphinx configuration for the package's documentation site, built with rosdoc2
# (`bash scripts/docs.sh`; rosdoc2 finds this file in doc/ and wraps it with its own settings).
# The user pages are the Markdown files beside this one (MyST); the Python API comes from the
# docstrings (sphinx-apidoc, run by rosdoc2); the interfaces from msg/ and srv/.

import re
from pathlib import Path

project = "ovseg_ros"
author = "ovseg_ros contributors"
copyright = "ovseg_ros contributors. License: Apache-2.0"

extensions = ["sphinx_rtd_theme", "myst_parser"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
master_doc = "index"
# rosdoc2 also copies doc/ into user_docs/ and makes a page for it; index.rst lists the pages
# themselves, so the copy is left out.
# The README is shown through standard_docs/README.rst, which includes the original.
exclude_patterns = ["_build", "user_docs", "user_docs*.rst", "__readme_include.rst",
                    "standard_docs/original"]
html_theme = "sphinx_rtd_theme"

# `page.md#real-weights` links between the pages: anchors for headings down to level 3.
myst_heading_anchors = 3

# A package re-exports its modules' names (ovseg_ros.geometry.ClassPoint is
# ovseg_ros.geometry.summary.ClassPoint): document each object once, where it is defined.
autodoc_default_options = {"ignore-module-all": True}


def _docstring_verbatim(app, what, name, obj, options, lines):
    """Our docstrings are plain text (shapes like `(B, C, h, w)`, indented examples), not
    reStructuredText: show them as written instead of letting docutils misread them."""
    if lines:
        lines[:] = ["::", ""] + ["    " + line for line in lines] + [""]


# The README is written for GitHub, with links relative to the repository root
# (doc/node.md, doc/images/...). rosdoc2 copies it to standard_docs/original/README.md and
# includes it from there, while the pages lie at the root of the source folder, which a leading
# "/" names: rewrite the copy's links before anything is read.
_README_LINK = re.compile(r"\]\(doc/")


def _readme_links(app):
    readme = Path(app.srcdir) / "standard_docs" / "original" / "README.md"
    if readme.is_file():
        readme.write_text(_README_LINK.sub("](/", readme.read_text()))


def setup(app):
    app.connect("autodoc-process-docstring", _docstring_verbatim)
    app.connect("builder-inited", _readme_links)
