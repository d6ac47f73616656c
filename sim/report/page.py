"""What a report page is made of: its charts (each with how to read it) and its tables, before rendering."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from matplotlib.figure import Figure


@dataclass
class Chart:
    """One chart of the page: a file stem, a heading, a how-to-read caption, and optionally a table."""

    key: str
    title: str
    caption: str
    figure: Figure
    table: dict[str, Any] | None = None
    note: str | None = None


@dataclass
class Page:
    """Everything on the page but the images' bytes."""

    title: str
    subtitle: str
    summary: list[dict[str, str]]
    charts: list[Chart]
    methods: list[str]
    headline: dict[str, Any] | None = None
    headline_title: str = "Headline figures"
    headline_note: str | None = None
    assumptions: dict[str, Any] | None = None
    assumptions_note: str = ""
