"""The modules of ``src/mmib`` a script really imports, transitively: what its DVC stage depends on.

Every ``import`` / ``from ... import`` counts, also those inside functions (a stage runs them);
a package counts with its ``__init__.py``, and ``from pkg import name`` counts ``pkg/name.py``
when ``name`` is a module. Imports outside ``mmib`` (numpy, torch) are not followed.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = "mmib"


def _module_file(src: Path, name: str) -> Path | None:
    """``src/mmib/a/b.py`` or ``src/mmib/a/b/__init__.py`` for ``mmib.a.b``; None when neither exists."""
    base = src.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _with_parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _imported_names(path: Path, package: str) -> set[str]:
    """The ``mmib...`` module names one file imports (and the names ``from X import`` takes out of X)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the file's package, up level - 1
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            names.add(base)
            names |= {f"{base}.{a.name}" for a in node.names}
    return {n for n in names if n == ROOT or n.startswith(ROOT + ".")}


def imported_files(script: Path, src: Path) -> set[Path]:
    """Every file under ``src/mmib`` that running ``script`` imports (transitively)."""
    seen: set[Path] = set()
    todo = [(script, "")]
    while todo:
        path, package = todo.pop()
        for name in _imported_names(path, package):
            for module in _with_parents(name):
                found = _module_file(src, module)
                if found is None or found in seen:
                    continue  # not a module (a name inside one), or done already
                seen.add(found)
                todo.append((found, module if found.name == "__init__.py" else module.rpartition(".")[0]))
    return seen
