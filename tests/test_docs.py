"""The documentation: every public name has a runnable example and a page on the site, and the
site builds with warnings as errors (what CI builds)."""

from __future__ import annotations

import html as html_module
import importlib
import inspect
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import pyro_ar

ROOT = Path(__file__).resolve().parents[1]


def _public_modules() -> list[str]:
    names = ["pyro_ar"]
    for info in pkgutil.walk_packages(pyro_ar.__path__, "pyro_ar."):
        if not info.name.endswith("__main__"):  # running it is the command line
            names.append(info.name)
    return names


def _public_names() -> list[tuple[str, str, object]]:
    """``(module, name, object)`` for every name in a module's ``__all__``, where it is defined
    (re-exports are counted once, at home)."""
    found = []
    for module_name in _public_modules():
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", ()):
            if name.startswith("__"):  # __version__
                continue
            value = getattr(module, name)
            home = getattr(value, "__module__", module_name)
            if (inspect.isclass(value) or inspect.isfunction(value)) and home != module_name:
                continue
            found.append((module_name, name, value))
    return found


def test_every_module_declares_its_public_names():
    missing = [
        name for name in _public_modules() if not hasattr(importlib.import_module(name), "__all__")
    ]
    assert missing == []


def _docstrings_of_classes_and_functions() -> dict[str, str]:
    return {
        f"{module}.{name}": inspect.getdoc(value) or ""
        for module, name, value in _public_names()
        if inspect.isclass(value) or inspect.isfunction(value)
    }


def test_every_public_class_and_function_has_an_example():
    # the examples run as doctests (pyproject: --doctest-modules over pyro_ar)
    docstrings = _docstrings_of_classes_and_functions()
    assert [name for name, text in docstrings.items() if "Example" not in text] == []


def test_every_public_class_and_function_documents_itself():
    # a docstring beyond one line: the formula or behaviour, arguments, errors
    docstrings = _docstrings_of_classes_and_functions()
    thin = [
        name for name, text in docstrings.items() if len(text.split("Example:")[0].strip()) < 40
    ]
    assert thin == []


@pytest.mark.slow
def test_site_builds_without_warnings_and_documents_every_public_name(tmp_path):
    from sphinx.util.inventory import InventoryFile

    output = tmp_path / "html"
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", "docs", output],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr

    with open(output / "objects.inv", "rb") as file:
        inventory = InventoryFile.load(file, "", lambda base, uri: uri)
    documented = {name for entries in inventory.values() for name in entries}
    # a public name is documented at home or where a package re-exports it
    undocumented = []
    for module, name, value in _public_names():
        home = getattr(value, "__module__", None) or module
        package = ".".join(module.split(".")[:2])
        candidates = {f"{module}.{name}", f"{home}.{name}", f"{package}.{name}"}
        # constants carry no __module__: documented in the module that defines them
        is_constant = not (inspect.isclass(value) or inspect.isfunction(value))
        if not candidates & documented and not (
            is_constant and any(entry.endswith(f".{name}") for entry in documented)
        ):
            undocumented.append(f"{module}.{name}")
    assert undocumented == []

    pages = {path.relative_to(output).as_posix() for path in output.rglob("*.html")}
    notebooks = sorted(path.stem for path in (ROOT / "tutorials").glob("*.ipynb"))
    assert {f"tutorials/{name}.html" for name in notebooks} <= pages
    for page, text in [
        ("installation.html", "pip install torch==2.13.0"),
        ("models.html", "Binarized MNIST test NLL"),
        ("architecture.html", "EpochLoop"),
    ]:
        html = (output / page).read_text()
        assert text in html_module.unescape(re.sub(r"<[^>]+>", "", html)), page
    # rendered with their stored outputs (figures included)
    assert "<img" in (output / f"tutorials/{notebooks[0]}.html").read_text()


MACHINE_PATH = re.compile(r"(/root/|/home/[^/\s]+/|/work/|/tmp/|site-packages/|[A-Z]:\\Users)")


def test_no_committed_file_names_a_machine_path():
    """Benchmark results, documentation, code and tutorials are read on other machines: a path
    of this one (a data directory, a temporary file) must never be written into them."""
    folders = ["bench", "docs", "pyro_ar", "tutorials", "tools"]
    files = [ROOT / "README.md", ROOT / "CHANGELOG.md", ROOT / "pyproject.toml"]
    for folder in folders:
        files += [
            path
            for path in (ROOT / folder).rglob("*")
            if path.is_file()
            and "_build" not in path.parts
            and "__pycache__" not in path.parts
            and path.suffix in {".py", ".md", ".json", ".ipynb", ".sh", ".toml", ".txt", ".cfg"}
        ]
    offenders = [
        f"{path.relative_to(ROOT)}: {match.group(0)}"
        for path in files
        for match in [MACHINE_PATH.search(path.read_text(errors="replace"))]
        if match
    ]
    assert not offenders, offenders
