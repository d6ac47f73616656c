"""``extends: base.yaml``: a scenario file starting from another, each value keeping its file and line."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from support.scenarios import ROOT

from sim.cli import EXIT_BAD_INPUT, main
from sim.input.documents import read_yaml
from sim.input.errors import InputError
from sim.input.scenarios import load_scenario

BASE = (ROOT / "scenarios" / "points_program.yaml").read_text()


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def test_mappings_merge_key_by_key_and_lists_and_scalars_are_replaced(tmp_path: Path) -> None:
    _write(tmp_path, "base.yaml", "a: {x: 1, y: [1, 2], z: {p: 1, q: 2}}\nb: 3\n")
    _write(tmp_path, "mid.yaml", "extends: base.yaml\na: {y: [9], z: {q: 5}}\n")
    doc = read_yaml(_write(tmp_path, "top.yaml", "extends: mid.yaml\nb: 4\nc: new\n"))
    assert doc.data == {"a": {"x": 1, "y": [9], "z": {"p": 1, "q": 5}}, "b": 4, "c": "new"}
    assert doc.problem(("a", "x"), "m").source == str(tmp_path / "base.yaml")
    assert doc.problem(("a", "y", 0), "m").source == str(tmp_path / "mid.yaml")
    assert doc.problem(("b",), "m").source == str(tmp_path / "top.yaml")


def test_a_bad_value_from_the_base_names_the_base_files_line(tmp_path: Path) -> None:
    bad = BASE.replace("gross_margin: 0.30", "gross_margin: 1.30")
    line = next(i for i, text in enumerate(bad.splitlines(), 1) if "gross_margin: 1.30" in text)
    _write(tmp_path, "base.yaml", bad)
    child = _write(tmp_path, "child.yaml", "# a variant\nextends: base.yaml\nname: child\n"
                                           "economics:\n  cost_to_serve_per_order: -1\n")
    with pytest.raises(InputError) as caught:
        load_scenario(child)
    where = {(p.source, p.line) for p in caught.value.problems}
    assert (str(tmp_path / "base.yaml"), line) in where
    assert (str(child), 5) in where


def test_the_extending_files_values_win_and_the_results_scenario_has_no_extends(tmp_path: Path) -> None:
    _write(tmp_path, "base.yaml", BASE)
    child = _write(tmp_path, "child.yaml", "extends: base.yaml\nname: child\neconomics: {gross_margin: 0.25}\n")
    scenario = load_scenario(child)
    assert scenario.name == "child" and scenario.economics.gross_margin == 0.25
    assert scenario.economics.cost_to_serve_per_order == 4.0
    assert "extends" not in scenario.model_dump()


def test_a_cycle_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, "a.yaml", "extends: b.yaml\nname: a\n")
    _write(tmp_path, "b.yaml", "name: b\nextends: a.yaml\n")
    result = CliRunner().invoke(main, ["validate", str(tmp_path / "a.yaml")])
    assert result.exit_code == EXIT_BAD_INPUT
    assert f"{tmp_path / 'b.yaml'}:2: extends:" in result.output and "cycle" in result.output


def test_a_missing_base_file_exits_2_naming_the_line(tmp_path: Path) -> None:
    child = _write(tmp_path, "child.yaml", "name: c\nextends: nowhere.yaml\n")
    result = CliRunner().invoke(main, ["validate", str(child)])
    assert result.exit_code == EXIT_BAD_INPUT
    assert f"{child}:2: extends:" in result.output and "nowhere.yaml: no such file" in result.output
