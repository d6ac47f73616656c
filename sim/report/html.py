"""Turning figures and words into one self-contained HTML page (jinja2, autoescaped).

Images are embedded as base64 ``data:`` URIs and the style sheet is inline, so the page needs no network
and no other file; the PNGs are also written beside it for slides and documents.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from sim.report.style import DPI

TEMPLATES = Path(__file__).parent / "templates"


def figure_png(figure: Figure) -> bytes:
    """The figure as PNG bytes (rendered with Agg; no metadata that changes between runs)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def data_uri(png: bytes) -> str:
    """A ``data:image/png;base64,...`` URI of PNG bytes."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def render(context: dict[str, Any]) -> str:
    """The report page from ``templates/report.html.j2`` and ``context`` (see :mod:`sim.report.build`)."""
    import jinja2

    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES),
                                     autoescape=jinja2.select_autoescape(["html", "j2"]),
                                     trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    return environment.get_template("report.html.j2").render(**context)
