"""``loyalty-sim report``: read a results directory, pick the charts that apply, write the page and PNGs.

The page is one self-contained HTML file (images inline as data URIs); the same charts are written as
PNG files into ``<stem>_files/`` beside it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from sim.input.errors import InputError, Problem
from sim.output.files import atomic_write, check_target
from sim.report.html import data_uri, figure_png, render
from sim.report.inputs import ComparisonData, RunData, SweepData, read_results
from sim.report.page import Page
from sim.report.style import DPI


@dataclass
class Report:
    """What :func:`build_report` wrote, and how long it took."""

    html: Path
    files: list[Path]
    kind: str
    seconds: float


def build_report(results_dir: str | os.PathLike[str], output: str | os.PathLike[str] | None = None) -> Report:
    """Write the HTML report of ``results_dir`` (a run, comparison or sweep directory) and its PNGs.

    ``output`` defaults to ``results_dir/report.html``; the PNGs go to ``<output stem>_files/``.

    Raises
    ------
    InputError
        When the directory is none of the three kinds, or a file in it is missing or damaged.
    """
    start = time.perf_counter()
    data = read_results(results_dir)
    html = Path(output) if output is not None else Path(results_dir) / "report.html"
    page, kind = _page(data)
    files_dir = html.with_name(f"{html.stem}_files")
    _prepare(html, files_dir)
    figures, files = [], []
    for number, chart in enumerate(page.charts, start=1):
        png = figure_png(chart.figure)
        path = files_dir / f"{number:02d}-{chart.key}.png"
        atomic_write(path, lambda p, png=png: p.write_bytes(png))
        files.append(path)
        width, height = (chart.figure.get_size_inches() * DPI).round().astype(int)
        scale = DPI / 100.0  # shown at 100 dpi: an 8-inch chart is 800 CSS pixels wide
        figures.append({"key": chart.key, "title": chart.title, "caption": chart.caption, "src": data_uri(png),
                        "width": int(width / scale), "height": int(height / scale), "table": chart.table,
                        "note": chart.note})
    context = {
        "title": page.title, "subtitle": page.subtitle, "summary": page.summary, "headline": page.headline,
        "headline_title": page.headline_title, "headline_note": page.headline_note, "figures": figures,
        "assumptions": page.assumptions, "assumptions_note": page.assumptions_note, "methods": page.methods,
        "version": _version(), "source": str(results_dir), "files_dir": files_dir.name,
        "command": f"loyalty-sim report {results_dir}" + (f" -o {output}" if output is not None else ""),
    }
    page_text = render(context)
    atomic_write(html, lambda p: p.write_text(page_text, encoding="utf-8"))
    return Report(html, files, kind, time.perf_counter() - start)


def _page(data: RunData | ComparisonData | SweepData) -> tuple[Page, str]:
    if isinstance(data, SweepData):
        from sim.report.sweep_page import sweep_page

        return sweep_page(data), "sweep"
    from sim.report.run_page import comparison_page, run_page

    if isinstance(data, ComparisonData):
        return comparison_page(data), "comparison"
    return run_page(data), "run"


def _prepare(html: Path, files_dir: Path) -> None:
    """Create the output folders; remove the PNGs of an earlier report there (its charts may differ)."""
    try:
        files_dir.mkdir(parents=True, exist_ok=True)
        for old in files_dir.glob("[0-9][0-9]-*.png"):
            old.unlink()
    except OSError as exc:
        raise InputError([Problem(str(html), (), f"cannot write the report there: {exc.strerror}")]) from None
    if html.is_dir():
        raise InputError([Problem(str(html), (), "is a directory; give the path of the HTML file to write")])
    check_target(html)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("loyalty-sim")
    except PackageNotFoundError:
        return "(development)"
