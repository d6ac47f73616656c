"""Bad input: exit status 2, a message naming the file, the key path and (where known) the line; no traceback.

The corpus in ``tests/bad_scenarios/`` holds one small broken scenario per file. Each starts with comments:

- ``# expect: <substring>`` (first line): the error output must contain it, usually the dotted key path;
- ``# line: N`` (optional): the error must point at ``FILE:N:``;
- ``# command: run`` (optional): check with ``loyalty-sim run`` instead of ``validate``;
- ``# xfail: <reason>`` (optional): a known bug, expected to fail until it is fixed (strict).

Files that cannot carry a comment (empty, binary) are written by the tests into ``tmp_path``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from support.scenarios import EXAMPLE_SCENARIOS

from sim.cli import main

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "bad_scenarios"
EXAMPLES = EXAMPLE_SCENARIOS   # the example sweeps are checked in test_sweep.py
VALID = ROOT / "scenarios" / "baseline_retail.yaml"
_HEADER = re.compile(r"#\s*([a-z_]+):\s*(.*?)\s*$")
#: Every corpus file must be refused within this many CPU seconds (the alias bomb is the slowest, ~1.5 s).
MAX_SECONDS = 8.0


def _header(path: Path) -> dict[str, str]:
    """The ``# key: value`` comments at the top of a corpus file (bytes-safe: one file is not UTF-8)."""
    meta: dict[str, str] = {}
    for line in path.read_bytes().decode("utf-8", "replace").splitlines():
        if not line.startswith("#"):
            break
        match = _HEADER.match(line)
        if match:
            meta.setdefault(match.group(1), match.group(2))
    return meta


def _corpus() -> list:
    params = []
    for path in sorted(CORPUS.glob("*.yaml")):
        meta = _header(path)
        marks = [pytest.mark.xfail(strict=True, reason=meta["xfail"])] if "xfail" in meta else []
        params.append(pytest.param(path, meta, id=path.stem, marks=marks))
    return params


def _invoke(*args: object) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def _assert_refused(result: Result, *expected: str) -> None:
    """Exit status 2 from the CLI's own error path (not an exception), every expected substring shown."""
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"uncaught {type(result.exception).__name__}: {result.exception}"
    )
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stdout == "", "errors go to stderr"
    assert result.stderr.startswith("error: "), result.stderr
    for text in expected:
        assert text in result.output, f"{text!r} not in:\n{result.output}"


def _run_cli(*args: object, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sim.cli", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=60, check=False)


# ---- the corpus -----------------------------------------------------------------------------------


def test_corpus_is_large_enough() -> None:
    files = sorted(CORPUS.glob("*.yaml"))
    assert len(files) >= 30
    for path in files:
        assert path.read_bytes().startswith(b"# expect: "), f"{path.name}: first line must be '# expect: ...'"


@pytest.mark.parametrize(("path", "meta"), _corpus())
def test_bad_scenario_is_refused(path: Path, meta: dict[str, str]) -> None:
    command = meta.get("command", "validate")
    start = time.process_time()   # CPU time: a loaded machine must not fail the test, a hang must
    result = _invoke(command, path)
    elapsed = time.process_time() - start
    _assert_refused(result, meta["expect"], str(path))
    if "line" in meta:
        assert f"{path}:{meta['line']}:" in result.output, result.output
    assert elapsed < MAX_SECONDS, f"took {elapsed:.1f} CPU s"


def test_huge_population_message_is_about_memory() -> None:
    result = _invoke("validate", CORPUS / "huge_population.yaml")
    _assert_refused(result, ": acquisition: ", "GiB", "this machine has", "the program's state would need")


def test_without_a_program_only_the_transaction_log_limits_the_population(tmp_path: Path) -> None:
    """The engine without a program runs in flat memory, so five billion customers who refer nobody are a
    long run, not a refusal; asking for their transaction log (about 135 bytes a purchase) is refused
    before the run."""
    text = (CORPUS / "huge_population.yaml").read_text()
    path = tmp_path / "huge_no_program.yaml"
    path.write_text(text[: text.index("policy:")])
    assert _invoke("validate", path).exit_code == 0
    result = _invoke("run", path, "--transactions", "--out", tmp_path / "out")
    _assert_refused(result, f"{path}:13: acquisition: ", "the transaction log would need about", "GiB")
    assert not (tmp_path / "out").exists()


def test_a_points_program_runs_in_flat_memory(tmp_path: Path) -> None:
    """The compiled program engine keeps a program's state in the slice being simulated: five billion
    customers of a points program are a long run, not a refusal (their transaction log still is)."""
    text = (CORPUS / "huge_population.yaml").read_text()
    path = tmp_path / "huge_points.yaml"
    path.write_text(text[: text.index("  discounts:")])
    assert _invoke("validate", path).exit_code == 0
    result = _invoke("run", path, "--transactions", "--out", tmp_path / "out")
    _assert_refused(result, f"{path}:13: acquisition: ", "GiB")
    assert not (tmp_path / "out").exists()


def test_python_tag_in_corpus_does_not_run() -> None:
    """``!!python/object/apply:os.system ["echo hi"]``: refused, and nothing is echoed."""
    done = _run_cli("validate", CORPUS / "python_object_apply.yaml")
    assert done.returncode == 2
    assert done.stdout == ""
    assert "python tags are refused" in done.stderr
    assert "Traceback" not in done.stderr


# ---- files the corpus cannot hold: real subprocesses ----------------------------------------------


@pytest.mark.parametrize("tag", [
    '!!python/object/apply:os.system ["touch {marker}"]',
    '!!python/object/apply:subprocess.call [["touch", "{marker}"]]',
    "!!python/object/new:os.system [\"touch {marker}\"]",
])
def test_python_tag_is_refused_and_never_runs(tmp_path: Path, tag: str) -> None:
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.yaml"
    path.write_text(VALID.read_text().replace("name: baseline-retail", "name: " + tag.format(marker=marker)))
    done = _run_cli("validate", path, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert f"{path}:4: name: " in done.stderr and "python tags are refused" in done.stderr
    assert not marker.exists(), "the YAML tag ran a command"


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_bytes(b"")
    done = _run_cli("validate", path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert f"error: {path}: " in done.stderr and "empty" in done.stderr


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "picture.yaml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10" + bytes(range(256)))
    done = _run_cli("validate", path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert f"error: {path}: is a binary file" in done.stderr


def test_utf16_file_is_binary(tmp_path: Path) -> None:
    path = tmp_path / "utf16.yaml"
    path.write_bytes(VALID.read_text().encode("utf-16"))
    _assert_refused(_invoke("validate", path), f"{path}: is a binary file")


def test_missing_file_and_directory(tmp_path: Path) -> None:
    _assert_refused(_invoke("validate", tmp_path / "nope.yaml"), f"{tmp_path / 'nope.yaml'}: no such file")
    _assert_refused(_invoke("validate", tmp_path), f"{tmp_path}: is a directory")


def test_oversized_file(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(VALID.read_bytes() + b"# padding\n" * 600_000)
    _assert_refused(_invoke("validate", path), f"{path}: is 6,", "bytes")


# ---- --set overrides ------------------------------------------------------------------------------


def test_set_bad_value_names_key_and_set() -> None:
    _assert_refused(_invoke("validate", VALID, "--set", "horizon_months=-3"),
                    "--set: horizon_months: Input should be greater than or equal to 1")


def test_set_bad_value_on_run() -> None:
    _assert_refused(_invoke("run", VALID, "--set", "horizon_months=-3"), "--set: horizon_months: ")


@pytest.mark.parametrize("override", ["horizon_months", "=3", "  =3"])
def test_set_without_key_or_equals(override: str) -> None:
    _assert_refused(_invoke("validate", VALID, "--set", override), "--set: ", "expected dotted.key=value")


def test_set_list_index_out_of_range() -> None:
    _assert_refused(_invoke("validate", VALID, "--set", "acquisition.5.cac=1"),
                    "--set: acquisition.5: index 5 is out of range (the list has 2 items)")


@pytest.mark.parametrize("override", ["policy.tiers.0.min_spend_12m=100", "policy.tiers.0={name: gold}"])
def test_set_index_into_tiers_the_scenario_does_not_have(override: str) -> None:
    _assert_refused(_invoke("validate", ROOT / "scenarios" / "points_program.yaml", "--set", override),
                    "--set: policy.tiers.0", "the scenario has no tiers",
                    "--set 'policy.tiers=[{name: gold, min_spend_12m: 100}]'")


def test_set_index_into_any_list_the_scenario_does_not_have() -> None:
    result = _invoke("validate", VALID, "--set", "policy.discounts.1.depth=0.2")
    _assert_refused(result, "--set: policy.discounts.1.depth", "the scenario has no discounts",
                    "add the whole list with --set")
    assert "valid list" not in result.output


def test_set_list_index_one_past_the_end() -> None:
    _assert_refused(_invoke("validate", VALID, "--set", "acquisition.2={channel: x}"), "--set: acquisition.2")


def test_set_tier_index_out_of_range(tmp_path: Path) -> None:
    path = tmp_path / "tiers.yaml"
    path.write_text(VALID.read_text() + "policy:\n  tiers:\n    - {name: gold, min_spend_12m: 500}\n")
    assert _invoke("validate", path).exit_code == 0
    _assert_refused(_invoke("validate", path, "--set", "policy.tiers.3.min_spend_12m=5"),
                    "--set: policy.tiers.3: index 3 is out of range (the list has 1 items)")


def test_set_unreadable_value() -> None:
    _assert_refused(_invoke("validate", VALID, "--set", "horizon_months=[1"),
                    "--set: horizon_months: cannot read value")


def test_set_python_tag_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    result = _invoke("validate", VALID, "--set", f'name=!!python/object/apply:os.system ["touch {marker}"]')
    _assert_refused(result, "--set: name: cannot read value")
    assert not marker.exists()


def test_set_unknown_key() -> None:
    _assert_refused(_invoke("validate", VALID, "--set", "economics.gross_marign=0.3"),
                    "--set: economics.gross_marign: unknown key 'gross_marign' (did you mean 'gross_margin'?)")


def test_set_good_value_is_accepted() -> None:
    result = _invoke("validate", VALID, "--set", "horizon_months=24", "--set", "acquisition.1.cac=6")
    assert result.exit_code == 0, result.output
    assert "over 24 months" in result.output


def test_run_option_out_of_range() -> None:
    result = _invoke("run", VALID, "--replications", "0")
    assert result.exit_code == 2
    assert "--replications" in result.output


# ---- the valid examples ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_scenarios_validate(path: Path) -> None:
    result = _invoke("validate", path)
    assert result.exit_code == 0, result.output
    assert "valid scenario" in result.output


# ---- bugs found by this corpus, now fixed: kept as regression tests -----------------------------


def test_deeply_nested_yaml(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("name: deep\ndescription: " + "[" * 3000 + "]" * 3000 + "\n")
    _assert_refused(_invoke("validate", path), str(path))


@pytest.mark.parametrize("misplaced", ["gross_margin: 0.3", "cv: 0.5"])
def test_misplaced_key_is_not_suggested_as_itself(tmp_path: Path, misplaced: str) -> None:
    key = misplaced.split(":")[0]
    path = tmp_path / "misplaced.yaml"
    path.write_text(VALID.read_text() + misplaced + "\n")
    result = _invoke("validate", path)
    _assert_refused(result, f": {key}: unknown key '{key}'")
    assert f"did you mean '{key}'" not in result.output
    assert "it belongs under" in result.output


def test_compounding_referrals_are_sized(tmp_path: Path) -> None:
    path = tmp_path / "viral.yaml"
    path.write_text(
        "name: viral\nhorizon_months: 60\neconomics: {gross_margin: 0.3}\n"
        "segments:\n  regular:\n    purchases_per_year: {mean: 1}\n"
        "    dropout: {model: hazard, annual_churn: 0.01}\n    order_value: {mean: 50}\n"
        "    referrals_per_year: {mean: 6}\n"
        "acquisition:\n  - {channel: web, initial_customers: 1000}\n"
    )
    # About 1000 * exp(6 * 5) = 1e16 customers by month 60; the check assumes 1000 * (1 + 6 * 5) = 31,000.
    _assert_refused(_invoke("validate", path), str(path))


# ---- YAML 1.2 core schema: numbers and booleans as JSON-like YAML reads them ------------------------


def test_yaml_scalars_follow_the_core_schema(tmp_path: Path) -> None:
    from sim.input.documents import read_yaml

    path = tmp_path / "scalars.yaml"
    path.write_text("a: 044\nb: 1:00\nc: 0x24\nd: 1_2\ne: yes\nf: 1e-3\ng: off\nh: TRUE\ni: 0o17\n"
                    "j: 2024-01-01\nk: ~\nl: -.inf\nm: +5\n")
    assert read_yaml(path).data == {"a": 44, "b": "1:00", "c": 36, "d": "1_2", "e": "yes", "f": 0.001,
                                    "g": "off", "h": True, "i": 15, "j": "2024-01-01", "k": None,
                                    "l": float("-inf"), "m": 5}


def test_leading_zero_is_decimal(tmp_path: Path) -> None:
    path = tmp_path / "octal.yaml"
    path.write_text(VALID.read_text().replace("horizon_months: 36", "horizon_months: 044"))
    result = _invoke("validate", path)
    assert result.exit_code == 0, result.output
    assert "over 44 months" in result.output


def test_exponent_is_a_number(tmp_path: Path) -> None:
    path = tmp_path / "exponent.yaml"
    path.write_text(VALID.read_text().replace("gross_margin: 0.30", "gross_margin: 3e-1"))
    assert _invoke("validate", path).exit_code == 0


@pytest.mark.parametrize(("text", "shown"), [("1:00", "'1:00'"), ("1_2", "'1_2'"), ("yes", "'yes'")])
def test_yaml_1_1_forms_are_refused_where_numbers_are_due(tmp_path: Path, text: str, shown: str) -> None:
    path = tmp_path / "sexagesimal.yaml"
    path.write_text(VALID.read_text().replace("horizon_months: 36", f"horizon_months: {text}"))
    _assert_refused(_invoke("validate", path), f"{path}:6: horizon_months: ", f"(got {shown})")


def test_explicit_tag_must_fit_its_value(tmp_path: Path) -> None:
    path = tmp_path / "tagged.yaml"
    path.write_text(VALID.read_text().replace("horizon_months: 36", "horizon_months: !!int 1_000"))
    _assert_refused(_invoke("validate", path), f"{path}:6: horizon_months: '1_000' is not an integer")


def test_set_values_follow_the_core_schema() -> None:
    result = _invoke("validate", VALID, "--set", "horizon_months=044", "--set", "economics.gross_margin=3e-1")
    assert result.exit_code == 0, result.output
    assert "over 44 months" in result.output
    _assert_refused(_invoke("validate", VALID, "--set", "horizon_months=1:00"),
                    "--set: horizon_months: Input should be a valid integer (got '1:00')")
    _assert_refused(_invoke("validate", VALID, "--set", "horizon_months=yes"), "(got 'yes')")


# ---- files that are not regular files, and paths that cannot be opened ----------------------------


def _special_path(kind: str, tmp_path: Path) -> Path:
    import os

    if kind == "fifo":
        path = tmp_path / "pipe.yaml"
        os.mkfifo(path)
    elif kind == "symlink loop":
        path = tmp_path / "loop_a.yaml"
        path.symlink_to(tmp_path / "loop_b.yaml")
        (tmp_path / "loop_b.yaml").symlink_to(path)
    elif kind == "path through a file":
        (tmp_path / "file.yaml").write_text(VALID.read_text())
        path = tmp_path / "file.yaml" / "x.yaml"
    elif kind == "name too long":
        path = tmp_path / ("x" * 300 + ".yaml")
    else:
        path = Path("/dev/zero")
    return path


@pytest.mark.parametrize(("kind", "message"), [
    ("fifo", "is a named pipe (FIFO), not a YAML file"),
    ("symlink loop", "cannot be opened: the symbolic links form a loop"),
    ("path through a file", "cannot be opened: a part of the path is a file, not a directory"),
    ("name too long", "cannot be opened: the name is too long"),
    ("/dev/zero", "is a device, not a YAML file"),
])
def test_unreadable_paths_exit_2_naming_the_file(tmp_path: Path, kind: str, message: str) -> None:
    """Was: a FIFO blocked forever, /dev/zero read until memory ran out, the others were tracebacks.
    A real subprocess, so that a hang is a timeout (60 s) rather than a stuck suite."""
    path = _special_path(kind, tmp_path)
    done = _run_cli("validate", path)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith(f"error: {path}: {message}"), done.stderr


def test_sweep_naming_an_unopenable_scenario_exits_2(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(f"sweep:\n  name: s\n  scenario: {'x' * 300}.yaml\n  parameters:\n    seed: [1, 2]\n")
    _assert_refused(_invoke("validate", sweep), f"{sweep}:3: sweep.scenario: no such scenario file")


def test_huge_name_is_refused_without_printing_it(tmp_path: Path) -> None:
    path = tmp_path / "long_name.yaml"
    path.write_text(VALID.read_text().replace("name: baseline-retail", "name: " + "n" * 200_000))
    result = _invoke("validate", path)
    _assert_refused(result, f"{path}:4: name: String should have at most 200 characters", "(200,000 characters)")
    assert len(result.output) < 500


@pytest.mark.parametrize(("text", "line", "message"), [
    (b"name: a\nhorizon_months: 12\nx: " + b"[" * 3000 + b"]" * 3000 + b"\n", 3, "nested too deeply"),
    (b"name: a\nx:\n" + b"".join(b"  " * i + b"k:\n" for i in range(1500)), 1502, "nested too deeply"),
    (b"name: a\nsegments: \"x\x01y\"\n", 2, "unacceptable character #x0001"),
    (b"name: a\nhorizon_months: 12\nsegments: caf\xe9\n", 3, "is not UTF-8 text"),
], ids=["deep flow", "deep block", "control character", "not UTF-8"])
def test_unreadable_text_names_its_line(tmp_path: Path, text: bytes, line: int, message: str) -> None:
    """Was: these problems came without a line, the only clue where to look in a long file."""
    path = tmp_path / "bad.yaml"
    path.write_bytes(text)
    _assert_refused(_invoke("validate", path), f"{path}:{line}: ", message)


def test_a_block_problem_caused_by_set_names_set_not_the_files_line() -> None:
    """Was: `scenarios/...yaml:34: acquisition: ... customers` for a --set value, blaming the file."""
    result = _invoke("validate", VALID, "--set", "acquisition.0.initial_customers=1000000000")
    _assert_refused(result, "error: --set: acquisition: ", "(caused by acquisition.0.initial_customers)")
    assert f"{VALID}:" not in result.output
