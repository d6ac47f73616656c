"""Draws the response curves of ``docs/levers.md`` section 3 from the code the engines call.

    python scripts/response_curves.py                 # writes docs/images/response_*.png
    python scripts/response_curves.py --out DIR       # elsewhere

The curves are drawn at the default ``response:`` keys, so the images change only when a default or a
curve does; tests/test_response.py runs this script.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sim.report.response_charts import CHARTS
from sim.report.style import DPI
from sim.schema.policy import Response

ROOT = Path(__file__).resolve().parent.parent


def main(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, chart in CHARTS.items():
        path = out / f"{stem}.png"
        chart(Response()).savefig(path, format="png", dpi=DPI, metadata={"Software": None})
        written.append(path)
    return written


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    for written_path in main(parser.parse_args().out):
        print(written_path.relative_to(ROOT) if written_path.is_relative_to(ROOT) else written_path)
