"""What a run's start-up avoids (imports, compilations, recomputed tables) gives the same numbers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from sim.accounting.estimates import estimate, half_width
from sim.engines import allocator, program_lifetimes, program_loops
from sim.random import quantile_cache
from sim.random.gamma_table import CELLS, MeanOneGamma

ROOT = Path(__file__).resolve().parent.parent
SHAPES = [0.05, 0.3, 1.0, 1 / 0.81, 4.0, 37.5]
TABLE_FIELDS = ("left", "width", "squeeze", "kind", "ref", "log_coef", "lin_coef")


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The quantile cache in a fresh folder of its own."""
    monkeypatch.setattr(quantile_cache, "CACHE_DIRECTORY", tmp_path)
    return tmp_path


def fresh_quantiles(shape: float) -> np.ndarray:
    return special.gammaincinv(shape, np.arange(1, CELLS) / CELLS)


def cached_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("gamma-quantiles-*.bin"))


def recomputes(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The shapes whose quantiles are computed (not read) from now on."""
    computed: list[float] = []
    compute = quantile_cache._compute

    def spy(shape: float, cells: int, midpoints: bool = False) -> np.ndarray:
        computed.append(shape)
        return compute(shape, cells, midpoints)

    monkeypatch.setattr(quantile_cache, "_compute", spy)
    return computed


def test_the_cached_quantiles_round_trip_bit_for_bit(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    computed = recomputes(monkeypatch)
    first = [quantile_cache.gamma_quantiles(shape, CELLS) for shape in SHAPES]
    assert computed == SHAPES and len(cached_files(cache)) == len(SHAPES)
    again = [quantile_cache.gamma_quantiles(shape, CELLS) for shape in SHAPES]
    assert computed == SHAPES   # all read back
    for shape, written, read in zip(SHAPES, first, again, strict=True):
        assert read.tobytes() == written.tobytes() == fresh_quantiles(shape).tobytes()
        assert read.dtype == np.float64 and read.flags.writeable


def test_the_midpoint_quantiles_are_kept_apart_from_the_edges_bit_for_bit(cache: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    computed = recomputes(monkeypatch)
    middles = quantile_cache.gamma_quantiles(1.5, CELLS, midpoints=True)
    edges = quantile_cache.gamma_quantiles(1.5, CELLS)
    assert computed == [1.5, 1.5] and len(cached_files(cache)) == 2   # two files, not one read as the other
    assert quantile_cache.gamma_quantiles(1.5, CELLS, midpoints=True).tobytes() == middles.tobytes()
    assert computed == [1.5, 1.5]
    # the enrollment curve's grid (sim.model.program._intercept) as it was written before it was kept
    expected = special.gammaincinv(1.5, np.linspace(0.5, CELLS - 0.5, CELLS) / CELLS)
    assert middles.tobytes() == expected.tobytes() and edges.tobytes() == fresh_quantiles(1.5).tobytes()


def test_the_tables_from_the_cache_equal_the_tables_computed_afresh(cache: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(quantile_cache, "CACHE_DIRECTORY", None)   # no cache: scipy every time
    fresh = MeanOneGamma(SHAPES + [None, 1e-3])
    monkeypatch.setattr(quantile_cache, "CACHE_DIRECTORY", cache)
    MeanOneGamma(SHAPES)                                            # writes the cache
    computed = recomputes(monkeypatch)
    cached = MeanOneGamma(SHAPES + [None, 1e-3])                    # reads it
    assert computed == []
    for field in TABLE_FIELDS:
        assert getattr(cached, field).tobytes() == getattr(fresh, field).tobytes(), field


@pytest.mark.parametrize("damage", ["truncated", "flipped", "empty", "other shape", "longer"])
def test_a_damaged_cache_file_is_recomputed_and_rewritten(cache: Path, monkeypatch: pytest.MonkeyPatch,
                                                          damage: str) -> None:
    shape = 2.5
    quantile_cache.gamma_quantiles(shape, CELLS)
    [path] = cached_files(cache)
    content = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(content[:-8])
    elif damage == "flipped":   # one bit of one quantile
        path.write_bytes(content[:100] + bytes([content[100] ^ 1]) + content[101:])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "other shape":   # a valid file, but for another shape, under this shape's name
        other = quantile_cache.gamma_quantiles(3.5, CELLS)
        assert other.tobytes() != fresh_quantiles(shape).tobytes()
        path.write_bytes(next(p for p in cached_files(cache) if p != path).read_bytes())
    else:
        path.write_bytes(content + content[-8:])
    computed = recomputes(monkeypatch)
    assert quantile_cache.gamma_quantiles(shape, CELLS).tobytes() == fresh_quantiles(shape).tobytes()
    assert computed == [shape]
    assert path.read_bytes() == content   # written again, whole
    assert not list(cache.glob(".*"))     # and no temporary file left


def test_an_unwritable_cache_folder_only_means_recomputing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setattr(quantile_cache, "CACHE_DIRECTORY", blocker / "__pycache__")   # mkdir fails
    computed = recomputes(monkeypatch)
    for _ in range(2):
        assert quantile_cache.gamma_quantiles(0.7, CELLS).tobytes() == fresh_quantiles(0.7).tobytes()
    assert computed == [0.7, 0.7]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_the_cache_keeps_only_the_newest_files(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(quantile_cache, "MAX_FILES", 3)
    shapes = [1.5, 2.5, 3.5, 4.5, 5.5]
    for shape in shapes:
        quantile_cache.gamma_quantiles(shape, CELLS)
        for path in cached_files(cache):   # the files written so far, older by a minute each step
            os.utime(path, (path.stat().st_mtime - 60,) * 2)
    assert len(cached_files(cache)) == 3
    computed = recomputes(monkeypatch)
    for shape in shapes:
        quantile_cache.gamma_quantiles(shape, CELLS)
    assert computed[:2] == [1.5, 2.5]   # the two oldest were removed, the three newest read


def test_the_t_quantile_is_scipy_stats_own() -> None:
    for confidence in (0.5, 0.8, 0.9, 0.95, 0.99, 0.999, 1.0):
        counts = np.array([0, 1, 2, 3, 5, 10, 30, 100, 10_000])
        expected = stats.t.ppf(0.5 + confidence / 2.0, np.maximum(counts - 1, 1)) * 2.5
        assert half_width(2.5, counts, confidence).tobytes() == expected.tobytes()
    counts = pd.DataFrame({"a": [2, 7], "b": [4, 40]})
    spreads = pd.DataFrame({"a": [1.0, 3.0], "b": [0.5, 2.0]})
    got = half_width(spreads, counts)
    pd.testing.assert_frame_equal(got, spreads * stats.t.ppf(0.975, np.maximum(counts - 1, 1)), check_exact=True)
    values = [3.0, 4.5, 2.25, 7.0]
    result = estimate(values)
    half = stats.t.ppf(0.975, 3) * np.std(values, ddof=1) / 2.0
    assert (result.ci_low, result.ci_high) == (np.mean(values) - half, np.mean(values) + half)


def test_the_spell_lists_are_empty_typed_lists_of_their_records() -> None:
    spells = program_lifetimes.spell_lists()
    assert [len(records) for records in spells] == [0, 0, 0, 0]
    assert [str(records._dtype) for records in spells] == ["int64", "float64", "int64", "float64"]
    program_loops.extend_spells(*spells, np.array([7]), np.array([0.5]), np.array([2]), np.array([1.25]))
    assert [array.tolist() for array in program_lifetimes.spell_arrays(spells)] == [[7], [0.5], [2], [1.25]]
    assert [len(records) for records in program_lifetimes.spell_lists()] == [0, 0, 0, 0]   # new at every call


def test_the_allocator_finds_glibc_without_starting_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    import platform

    def no_process(*args, **kwargs):
        raise AssertionError("a process was started")

    monkeypatch.setattr(subprocess, "Popen", no_process)
    assert allocator.keep_freed_memory.__wrapped__() == (platform.libc_ver()[0] == "glibc")


def test_numpy_huge_page_hint_off_unless_the_user_chose_it(monkeypatch: pytest.MonkeyPatch) -> None:
    multiarray = np._core.multiarray if int(np.__version__.split(".")[0]) >= 2 else np.core.multiarray
    if not hasattr(multiarray, "_get_madvise_hugepage"):
        pytest.skip("this numpy has no switch for its huge-page hint")
    before = multiarray._set_madvise_hugepage(True)
    try:
        monkeypatch.setenv("NUMPY_MADVISE_HUGEPAGE", "1")
        allocator._no_huge_page_hint()
        assert multiarray._get_madvise_hugepage()       # the user's choice stands
        monkeypatch.delenv("NUMPY_MADVISE_HUGEPAGE")
        allocator._no_huge_page_hint()
        assert not multiarray._get_madvise_hugepage()
    finally:
        multiarray._set_madvise_hugepage(before)


RUN = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from sim.random import quantile_cache
    quantile_cache.CACHE_DIRECTORY = Path(sys.argv[1])
    from sim.experiments.replications import run_scenario
    from sim.input.scenarios import load_scenario
    scenario = load_scenario(Path(sys.argv[2]), ["acquisition.0.initial_customers=2000", "replications=1"])
    totals = run_scenario(scenario).replications[0].totals
    print(json.dumps({"totals": {k: float(v) for k, v in totals.items()},
                      "modules": sorted(m for m in ("scipy.special", "scipy.stats", "scipy.linalg", "pyarrow",
                                                    "pandas") if m in sys.modules)}))
""")


@pytest.mark.parametrize("example", ["cdnow_baseline", "points_program"])
def test_a_run_imports_no_scipy_once_its_quantiles_are_cached(tmp_path: Path, example: str) -> None:
    """The Gamma tables' quantiles and, with a program, the enrollment curve's (self_selection 1.0)."""
    scenario = ROOT / "scenarios" / f"{example}.yaml"
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    runs = [json.loads(subprocess.run([sys.executable, "-c", RUN, str(tmp_path), str(scenario)], check=True,
                                      capture_output=True, text=True, env=environment).stdout)
            for _ in range(2)]
    assert "scipy.special" in runs[0]["modules"] and cached_files(tmp_path)   # computed the quantiles
    assert "scipy.special" not in runs[1]["modules"] and "scipy.stats" not in runs[1]["modules"]
    assert "scipy.linalg" not in runs[1]["modules"]   # numba's look for a BLAS skipped (sim.random.compiled)
    assert runs[0]["totals"] == runs[1]["totals"] and runs[0]["totals"]["purchases"] > 0
    if example == "points_program":
        assert runs[1]["totals"]["members_acquired"] > 0


BLAS = textwrap.dedent("""
    import json, sys
    import numba, numpy as np
    import sim.random.compiled
    from numba.np import arraymath
    looked = "scipy.linalg" in sys.modules
    @numba.njit
    def products(a):
        return np.correlate(a, a)[0], np.dot(a, a), np.linalg.inv(np.diag(a))[1, 1]
    correlation, dot, inverse = products(np.arange(1.0, 4.0))
    print(json.dumps([looked, arraymath._HAVE_BLAS, correlation, dot, inverse]))
""")


def test_numba_does_not_look_for_a_blas_and_its_linear_algebra_still_works() -> None:
    """numba's array functions skip their look for a BLAS at import (scipy.linalg, 0.13 s of a start):
    ``np.correlate`` runs numba's own inner product, and ``np.dot`` and numba's linear algebra still compute,
    importing scipy themselves."""
    done = subprocess.run([sys.executable, "-c", BLAS], check=True, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    looked, blas, correlation, dot, inverse = json.loads(done.stdout)
    assert not looked and not blas
    assert correlation == 14.0 and dot == 14.0 and inverse == 0.5


FREEZE = textwrap.dedent("""
    import gc, json, sys
    from sim.experiments.executors import execute
    workers = int(sys.argv[1])
    before = gc.get_freeze_count()
    results = sorted(execute(pow, [(2, 3), (3, 2), (5, 2)], workers=workers))
    frozen = gc.get_freeze_count()
    again = list(execute(pow, [(2, 2)]))
    print(json.dumps([before, frozen, gc.get_freeze_count(), results, again]))
""")


@pytest.mark.parametrize("workers", [1, 2])
def test_the_executors_freeze_what_is_imported_once_a_process(workers: int) -> None:
    done = subprocess.run([sys.executable, "-c", FREEZE, str(workers)], check=True, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    before, frozen, later, results, again = json.loads(done.stdout)
    assert before == 0 and frozen > 1_000    # the objects of the interpreter and the modules imported
    assert later == frozen                   # not again: objects made since stay collectable
    assert results == [[0, 8], [1, 9], [2, 25]] and again == [[0, 4]]


THREADS = textwrap.dedent("""
    import json, os, sys
    import sim.schema, numpy, scipy.special
    print(json.dumps([len(os.listdir("/proc/self/task")), os.environ["OPENBLAS_NUM_THREADS"]]))
""")


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads in /proc (Linux)")
@pytest.mark.parametrize("chosen", [None, "2"])
def test_openblas_starts_no_threads_unless_the_user_chose(chosen: str | None) -> None:
    environment = {key: value for key, value in os.environ.items() if key != "OPENBLAS_NUM_THREADS"}
    environment["PYTHONPATH"] = str(ROOT)
    if chosen is not None:
        environment["OPENBLAS_NUM_THREADS"] = chosen
    done = subprocess.run([sys.executable, "-c", THREADS], check=True, capture_output=True, text=True,
                          env=environment)
    threads, setting = json.loads(done.stdout)
    assert setting == (chosen or "1")
    if chosen is None:
        assert threads == 1   # numpy's and scipy's OpenBLAS each started none
