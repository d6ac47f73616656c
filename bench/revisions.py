"""A module of the package as it was at a git revision, for the benchmarks that time a revision against this
tree (bench/bench_scoring.py, bench/bench_program_loop.py)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def module_at(revision: str, source: str, folder: Path, together: tuple[str, ...] = ()):
    """``source`` (a path in the repository, e.g. ``sim/model/scoring.py``) as it was at ``revision``,
    written into ``folder`` and imported as a module of its own (its compiled functions compiled afresh
    there). ``together``: modules of the package it imports (dotted names) that are taken as they were at
    ``revision`` too, for it alone (a helper whose signature changed since)."""
    text = subprocess.run(["git", "show", f"{revision}:{source}"], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout
    path = folder / f"{Path(source).stem}_{revision}.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    current = {name: sys.modules.get(name) for name in together}
    try:
        for name in together:
            sys.modules[name] = module_at(revision, name.replace(".", "/") + ".py", folder)
        spec.loader.exec_module(module)
    finally:   # this tree's modules back for everything else
        for name, kept in current.items():
            if kept is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = kept
    return module
