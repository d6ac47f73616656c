"""``loyalty-sim calibrate``: read the log, fit, print the report, write the segment YAML and the chart."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import sys
from pathlib import Path

from sim.calibration.customers import customer_table, write_customer_table
from sim.calibration.holdout import tracking_figure
from sim.calibration.log import LogColumns, read_log
from sim.calibration.output import print_report, scenario_yaml, segments_yaml
from sim.calibration.pipeline import calibrate
from sim.input.errors import InputError, Problem
from sim.output.files import atomic_write, check_target, same_file
from sim.output.layout import folder_name

#: File types the chart can be written as.
CHART_FORMATS = (".png", ".svg", ".pdf")
_SEGMENT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


def run_calibrate(path: str, *, calibration_end: dt.date | None, output: str | None, chart: str | None,
                  model: str, segments: int, segment_name: str, columns: LogColumns,
                  date_format: str | None, customers: str | None = None, margin: float = 1.0,
                  annual_discount_rate: float = 0.10) -> None:
    """The whole command; bad input raises :class:`InputError` (the CLI turns it into exit status 2)."""
    from rich.console import Console
    from rich.markup import escape

    if not _SEGMENT_NAME.match(segment_name):
        raise InputError([Problem("--segment-name", (), f"{segment_name!r}: use letters, digits, _ and -, "
                                  "starting with a letter")])
    if chart is not None and Path(chart).suffix.lower() not in CHART_FORMATS:
        raise InputError([Problem(chart, (), f"the chart's name must end in {', '.join(CHART_FORMATS)}")])
    for option, target in (("-o", output), ("--chart", chart)):
        if target is not None:
            check_target(target)   # before the fit, not after it
            if same_file(target, path):
                raise InputError([Problem(target, (), f"is the transaction log read; {option} would overwrite it")])
    console = Console(width=None if sys.stdout.isatty() else 120)
    with _status(console, f"reading {escape(path)}"):
        purchases = read_log(path, columns, date_format)
    with _status(console, f"fitting {purchases.customers:,} customers"):
        calibration = calibrate(purchases, calibration_end, model=model, segments=segments,
                                segment_name=segment_name)
    try:
        block = segments_yaml(calibration)
    except ValueError as exc:
        raise InputError([Problem(path, (), str(exc))]) from None
    print_report(calibration, console)
    chart_path = Path(chart) if chart else _default_chart(output, calibration.holdout is not None)
    if chart_path is not None:
        figure = tracking_figure(calibration.tracking, calibration.summary.calibration_end,
                                 title=f"{Path(path).name}: cumulative repeat purchases, predicted vs actual")
        _write(chart_path, lambda p: figure.savefig(p, format=chart_path.suffix[1:].lower(), dpi=110))
        console.print(f"chart written to {escape(str(chart_path))}")
    if customers is not None:
        with _status(console, f"scoring {calibration.summary.size:,} customers"):
            table = customer_table(calibration, purchases, margin=margin, annual_discount_rate=annual_discount_rate)
        _write(Path(customers), lambda p: write_customer_table(table, p, calibration, margin=margin,
                                                               annual_discount_rate=annual_discount_rate))
        console.print(f"customer table written to {escape(str(customers))} ({len(table):,} customers)")
    if output is None:
        console.print()
        sys.stdout.write(block)
    else:
        try:
            table = None if customers is None else os.path.relpath(Path(customers).resolve(),
                                                                    Path(output).resolve().parent)
            scenario = scenario_yaml(calibration, folder_name(Path(path).stem, "calibrated"), table)
        except ValueError as exc:
            raise InputError([Problem(path, (), str(exc))]) from None
        _write(Path(output), lambda p: p.write_text(scenario))
        console.print(f"scenario written to {escape(output)}: it runs as it is (`loyalty-sim run {escape(output)}`); "
                      "set its economics to your own")


def _status(console, message: str):
    """A spinner with ``message`` on a terminal; nothing otherwise."""
    return console.status(message) if console.is_terminal else contextlib.nullcontext()


def _default_chart(output: str | None, has_holdout: bool) -> Path | None:
    """Beside the YAML: ``segment.yaml`` gets ``segment-holdout.png``, when there is a holdout to show."""
    if output is None or not has_holdout:
        return None
    out = Path(output)
    return out.with_name(f"{out.stem}-holdout.png")


def _write(path: Path, write) -> None:
    """Write atomically (see :func:`sim.output.files.atomic_write`), creating the folder if needed."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError([Problem(str(path), (), f"cannot be written: {exc.strerror or exc}")]) from None
    atomic_write(path, write)
