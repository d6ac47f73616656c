"""Reports: one self-contained HTML page with charts (and the PNGs) from a run, comparison or sweep directory.

``build_report(results_dir, output)`` is the door (see :mod:`sim.report.build`); the charts are plain
functions of data in :mod:`sim.report.charts` and :mod:`sim.report.sweep_charts`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_report"]


def __getattr__(name: str) -> Any:
    if name == "build_report":
        from sim.report.build import build_report

        return build_report
    raise AttributeError(f"module 'sim.report' has no attribute {name!r}")
