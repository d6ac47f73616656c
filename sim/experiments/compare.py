"""Paired comparison of several scenarios on common random numbers (``loyalty-sim compare``).

Every scenario runs with the same seed and replication indices, so replication *i* of each faces the same
customers and the differences are paired (Law & Kelton, ch. 11). With ``k`` comparisons each interval is a
Bonferroni interval at ``1 - 0.05 / k``, so that all of them hold together with 95% confidence.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from sim.accounting.decision import comparison_decision
from sim.accounting.runs import RunResult
from sim.output.files import atomic_write
from sim.output.layout import SCENARIOS_FOLDER, folder_name, remove_stale
from sim.output.run_files import METRICS, VS_BASELINE_EXTRA, write_run_files

FAMILY_CONFIDENCE = 0.95


@dataclass
class Comparison:
    """Results of the compared scenarios; ``reference`` is what every other is compared with."""

    results: list[RunResult]
    reference: RunResult
    reference_is_baseline: bool
    #: The incremental profit whose chance of being exceeded the ``decision`` block gives.
    hurdle: float = 0.0

    @property
    def compared(self) -> list[RunResult]:
        return self.results if self.reference_is_baseline else self.results[1:]

    @property
    def confidence(self) -> float:
        """Per-interval confidence: Bonferroni over the comparisons."""
        return 1.0 - (1.0 - FAMILY_CONFIDENCE) / max(1, len(self.compared))

    def differences(self) -> dict[str, dict[str, Any]]:
        return {result.scenario.name: result.differences(self.reference, self.confidence)
                for result in self.compared}

    def content(self) -> dict[str, Any]:
        """compare.json."""
        differences = self.differences()
        return {
            "scenarios": [r.scenario.name for r in self.results],
            "reference": self.reference.scenario.name,
            "reference_is_baseline": self.reference_is_baseline,
            "replications": len(self.reference.replications),
            "seed": self.reference.scenario.seed,
            "horizon_months": self.reference.scenario.horizon_months,
            "population_scale": self.reference.scenario.population_scale,
            "confidence": self.confidence,
            "comparisons": len(self.compared),
            "metrics": {r.scenario.name: {name: est.as_dict() for name, est in r.metrics().items() if name in METRICS}
                        for r in self._all()},
            "differences": {name: {metric: diff[metric].as_dict() for metric in METRICS + VS_BASELINE_EXTRA}
                            for name, diff in differences.items()},
            "decision": comparison_decision(self.compared, self.reference, self.hurdle),
        }

    def _all(self) -> list[RunResult]:
        return self.results + ([self.reference] if self.reference_is_baseline else [])

    def table(self) -> pd.DataFrame:
        """comparison.parquet: one row per scenario and replication, every metric."""
        rows = []
        for result in self._all():
            for rep in result.replications:
                rows.append({"scenario": result.scenario.name, "replication": rep.replication,
                             **{name: rep.totals[name] for name in METRICS}})
        return pd.DataFrame(rows)


def write_comparison(comparison: Comparison, out_dir: str | os.PathLike[str],
                     sources: Mapping[str, str | os.PathLike[str]] | None = None) -> Path:
    """compare.json, comparison.parquet, and each scenario's own result files in a sub-directory.

    ``sources`` maps scenario names to the files they were read from (named in each scenario.yaml).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for result, folder in zip(comparison._all(), scenario_folders(comparison._all())):
        written += write_run_files(result, out / SCENARIOS_FOLDER / folder,
                                   source=(sources or {}).get(result.scenario.name))
    content = comparison.content()
    content["folders"] = dict(zip(content["metrics"], scenario_folders(comparison._all())))
    atomic_write(out / "compare.json", lambda p: p.write_text(json.dumps(content, indent=2) + "\n"))
    atomic_write(out / "comparison.parquet", lambda p: comparison.table().to_parquet(p, index=False))
    remove_stale(out, [*written, out / "compare.json", out / "comparison.parquet"])
    return out


def scenario_folders(results: list[RunResult]) -> list[str]:
    """A distinct, filesystem-safe folder name per scenario."""
    folders: list[str] = []
    for result in results:
        slug = folder_name(result.scenario.name, "scenario")
        candidate, n = slug, 2
        while candidate in folders:
            candidate, n = f"{slug}-{n}", n + 1
        folders.append(candidate)
    return folders
