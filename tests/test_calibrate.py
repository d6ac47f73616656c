"""`loyalty-sim calibrate`: the published CDNOW fits, a round trip through the engine, RFM segments, bad logs.

Statistical checks follow STYLE: a round-trip estimate must be within 4 of its own standard errors of the
true value, and the standard error must be small enough (a bound per parameter) for the check to have power.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner, Result
from support.scenarios import ROOT

from sim.calibration import (
    CustomerSummary,
    LogColumns,
    calibrate,
    fit_bgnbd,
    fit_gamma_gamma,
    fit_paretonbd,
    likelihoods,
    merge_same_day,
    read_log,
    segments_yaml,
    summarize,
)
from sim.calibration.mle import FitError
from sim.calibration.models import conditional_expected_purchases
from sim.calibration.rfm import rfm_scores, rfm_segments
from sim.calibration.summary import CompressedHistories
from sim.cli import main
from sim.input.errors import InputError
from sim.input.scenarios import load_scenario
from sim.model import theory
from sim.schema.units import WEEKS_PER_YEAR

CDNOW_SAMPLE = ROOT / "tests" / "data" / "cdnow" / "CDNOW_sample.txt"
CALIBRATION_END = dt.date(1997, 9, 30)
# Published estimates on the 2,357-customer sample (tests/data/cdnow, tests/data/cdnow/README.md), weeks.
PUBLISHED = {
    "BG/NBD": ({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}, -9582.4),
    "Pareto/NBD": ({"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}, -9595.0),
    "Gamma-Gamma": ({"p": 6.25, "q": 3.74, "gamma": 15.44}, -4055.9),
}
FITTERS = {"BG/NBD": fit_bgnbd, "Pareto/NBD": fit_paretonbd, "Gamma-Gamma": fit_gamma_gamma}

#: A scenario around a calibrated segments: block, to check that the block loads as it is written.
SCENARIO_HEAD = """name: calibrated
horizon_months: 12
economics: {gross_margin: 0.3}
"""


def invoke(*args: object) -> Result:
    return CliRunner().invoke(main, ["calibrate", *(str(a) for a in args)])


def scenario_with(block: str, tmp_path: Path, mix: str | None = None) -> Path:
    """A scenario file made of SCENARIO_HEAD, the calibrated block, and one acquisition channel."""
    channel = "acquisition:\n  - {channel: web, initial_customers: 100" + (f", segments: {mix}" if mix else "") + "}\n"
    path = tmp_path / "scenario.yaml"
    path.write_text(SCENARIO_HEAD + block + channel)
    return path


# --------------------------------------------------------------------------------------------- CDNOW


@pytest.fixture(scope="module")
def cdnow_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CDNOW sample as a transaction CSV (customer_id, date as YYYYMMDD, amount)."""
    raw = pd.read_csv(CDNOW_SAMPLE, sep=r"\s+", header=None, dtype={2: str},
                      names=["master_id", "customer_id", "date", "cds", "amount"])
    path = tmp_path_factory.mktemp("cdnow") / "cdnow.csv"
    raw[["customer_id", "date", "amount"]].to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def cdnow(cdnow_csv: Path) -> CustomerSummary:
    return summarize(read_log(cdnow_csv), CALIBRATION_END)


def test_cdnow_summary_is_the_published_one(cdnow: CustomerSummary) -> None:
    assert cdnow.size == 2357
    assert cdnow.x.sum() == 2457 and (cdnow.x > 0).sum() == 946
    assert cdnow.T.min() == pytest.approx(27.0) and cdnow.T.max() == pytest.approx(272 / 7)
    assert cdnow.holdout_weeks == 39.0


@pytest.mark.parametrize("model", list(PUBLISHED))
def test_cdnow_fits_recover_the_published_estimates(cdnow: CustomerSummary, model: str) -> None:
    published, log_likelihood = PUBLISHED[model]
    fit = FITTERS[model](cdnow)
    for name, value in published.items():
        assert fit.params[name] == pytest.approx(value, rel=0.01), name
    assert fit.log_likelihood == pytest.approx(log_likelihood, rel=0.01)
    assert fit.log_likelihood == pytest.approx(log_likelihood, abs=0.05)  # to the published rounding
    assert all(0 < se < value for value, se in zip(fit.params.values(), fit.std_errors.values()))


def test_cdnow_bgnbd_standard_errors_match_the_inverse_hessian(cdnow: CustomerSummary) -> None:
    """The delta-method standard errors equal those of a direct numerical Hessian in natural parameters."""
    fit = fit_bgnbd(cdnow)
    x, t_x, T = cdnow.x, cdnow.t_x, cdnow.T
    theta = np.array(list(fit.params.values()))

    def log_likelihood(v: np.ndarray) -> float:
        return float(theory.bgnbd_log_likelihood(x, t_x, T, *v).sum())

    steps = theta * 1e-3
    hessian = np.empty((4, 4))
    for i in range(4):
        for j in range(4):
            ei, ej = np.eye(4)[i] * steps[i], np.eye(4)[j] * steps[j]
            hessian[i, j] = (log_likelihood(theta + ei + ej) - log_likelihood(theta + ei - ej)
                             - log_likelihood(theta - ei + ej) + log_likelihood(theta - ei - ej)) / (4 * steps[i] * steps[j])
    direct = np.sqrt(np.diag(np.linalg.inv(-hessian)))
    np.testing.assert_allclose(list(fit.std_errors.values()), direct, rtol=0.01)


def test_cdnow_expected_repeat_purchases(cdnow: CustomerSummary) -> None:
    """The fitted BG/NBD gives the published E[X(t)] at 1, 3, 32 and 78 weeks (0.0532, 0.1506, 1.0437, 1.8576)."""
    fit = fit_bgnbd(cdnow)
    got = theory.bgnbd_expected_repeat_purchases(np.array([1.0, 3.0, 32.0, 78.0]), **fit.params)
    np.testing.assert_allclose(got, [0.0532, 0.1506, 1.0437, 1.8576], rtol=0.01)


def test_cdnow_holdout_check(cdnow_csv: Path, cdnow: CustomerSummary) -> None:
    calibration = calibrate(read_log(cdnow_csv), CALIBRATION_END)
    assert calibration.chosen == "BG/NBD"  # the higher likelihood, as published
    check = calibration.holdout
    # The actual holdout purchases, counted independently: distinct later purchase days of each customer.
    raw = pd.read_csv(cdnow_csv, dtype={"date": str})
    days = raw.drop_duplicates(["customer_id", "date"])
    assert check.actual == (days["date"] > "19970930").sum() == 1882
    table = check.by_repeat_purchases
    assert table["customers"].sum() == 2357
    assert list(table["calibration_repeat_purchases"][:2]) == ["0", "1"]
    assert table["actual"].iloc[0] == pytest.approx(cdnow.holdout[cdnow.x == 0].mean())
    expected = theory.bgnbd_conditional_expected_purchases(39.0, cdnow.x, cdnow.t_x, cdnow.T,
                                                          **calibration.segments[0].behaviour.params)
    assert check.predicted == pytest.approx(expected.sum(), rel=1e-9)
    assert (table["customers"] * table["predicted"]).sum() == pytest.approx(check.predicted, rel=1e-9)
    tracking = check.tracking
    assert tracking["actual"].iloc[-1] == 2457 + 1882
    assert tracking["date"].iloc[-1] == dt.date(1998, 6, 30)
    assert np.all(np.diff(tracking["week"]) <= 7) and np.all(np.diff(tracking["predicted"]) >= 0)
    # The in-sample fit tracks the calibration period closely (FHL 2005, figure 2).
    at_end = tracking[pd.to_datetime(tracking["date"]) <= pd.Timestamp(CALIBRATION_END)].iloc[-1]
    assert at_end["predicted"] == pytest.approx(at_end["actual"], rel=0.05)


def test_cdnow_command_writes_a_scenario_that_runs_and_a_chart(cdnow_csv: Path, tmp_path: Path) -> None:
    """-o writes a whole scenario: the calibrated segment, and the log's cohort arriving as it did (2,357
    first purchases from January to March 1997: 786 a month for 3 months), over the log's 18 months."""
    out = tmp_path / "out" / "segment.yaml"
    result = invoke(cdnow_csv, "--calibration-end", "1997-09-30", "-o", out)
    assert result.exit_code == 0, result.output
    assert re.search(r"BG/NBD \(chosen\)", result.output)
    assert "-9,582.43" in result.output and "-9,594.98" in result.output and "-4,055.92" in result.output
    assert "actual 1,882" in result.output
    block = out.read_text()
    params = yaml.safe_load(block)["segments"]["calibrated"]
    assert params["purchases_per_year"] == {"r": pytest.approx(0.243, rel=0.01),
                                            "alpha": pytest.approx(4.414, rel=0.01), "alpha_unit": "week"}
    scenario = load_scenario(out)
    assert scenario.horizon_months == 18
    assert [(a.new_per_month, a.months, a.segments) for a in scenario.acquisition] == [(786, 3, {"calibrated": 1.0})]
    law = scenario.segments["calibrated"].purchases_per_year.law()
    assert law.mean == pytest.approx(params["purchases_per_year"]["r"] / params["purchases_per_year"]["alpha"]
                                     * WEEKS_PER_YEAR, rel=1e-12)
    assert "# = {mean: " in block  # the strategist-friendly equivalents
    chart = out.with_name("segment-holdout.png")
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_with_the_customer_table_the_scenario_starts_from_the_existing_base(cdnow_csv: Path, tmp_path: Path) -> None:
    """-o with --customers: the scenario starts from the table's customers as they stood at the calibration end
    (existing_customers, its path relative to the scenario), looks 36 months ahead with new customers at the
    log's rate (786 a month), and runs."""
    out, table = tmp_path / "scenarios" / "ours.yaml", tmp_path / "data" / "customers.parquet"
    result = invoke(cdnow_csv, "--calibration-end", "1997-09-30", "--customers", table, "-o", out)
    assert result.exit_code == 0, result.output
    data = yaml.safe_load(out.read_text())
    assert data["existing_customers"] == {"file": "../data/customers.parquet", "segment": "calibrated"}
    assert "as they stood on 1997-09-30" in out.read_text()
    scenario = load_scenario(out)
    assert scenario.horizon_months == 36 and scenario.existing_count() == 2357
    assert [(a.new_per_month, a.months) for a in scenario.acquisition] == [(786, None)]
    run = CliRunner().invoke(main, ["run", str(out), "--replications", "1", "--workers", "1",
                                    "--set", "acquisition.0.new_per_month=10", "--out", str(tmp_path / "run")])
    assert run.exit_code == 0, run.output
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["metrics"]["existing_customers"]["mean"] == 2357


def test_friendly_comments_describe_the_same_laws(cdnow_csv: Path, tmp_path: Path) -> None:
    """Pasting the commented strategist-friendly forms instead of the native ones gives the same laws."""
    for model in ("bgnbd", "paretonbd"):
        result = invoke(cdnow_csv, "--calibration-end", "1997-09-30", "--model", model, "-o", tmp_path / "n.yaml")
        assert result.exit_code == 0, result.output
        native = (tmp_path / "n.yaml").read_text()
        friendly = re.sub(r"^(\s+\w+: )\{.*\}\s+# = (\{.*?\}).*$", r"\1\2", native, flags=re.MULTILINE)
        assert friendly != native
        laws = []
        for text in (native, friendly):
            (tmp_path / "variant.yaml").write_text(text)
            segment = load_scenario(tmp_path / "variant.yaml").segments["calibrated"]
            laws.append((segment.purchases_per_year.law(), segment.dropout.law(), segment.order_value.law()))
        for a, b in zip(*laws):
            for field in ("mean", "shape", "a", "b", "p", "q"):
                if hasattr(a, field) and getattr(a, field) is not None:
                    assert getattr(b, field) == pytest.approx(getattr(a, field), rel=2e-3), (model, field)


def test_without_a_calibration_end_the_whole_log_is_fitted(cdnow_csv: Path, tmp_path: Path) -> None:
    """No holdout check; the block goes to stdout; a chart is drawn only when asked for."""
    result = invoke(cdnow_csv, "--model", "bgnbd", "--chart", tmp_path / "fit.svg")
    assert result.exit_code == 0, result.output
    assert "no holdout check" in result.output
    block = result.output[result.output.index("# Calibrated by"):]
    assert yaml.safe_load(block)["segments"]["calibrated"]["dropout"]["model"] == "per_purchase"
    assert load_scenario(scenario_with(block, tmp_path)).segments["calibrated"]
    assert (tmp_path / "fit.svg").read_text().lstrip().startswith("<?xml")


def test_customers_who_arrive_after_the_calibration_end_are_left_out(cdnow_csv: Path) -> None:
    purchases = read_log(cdnow_csv)
    late = merge_same_day(np.r_[purchases.customer, 10**6], np.r_[purchases.day, purchases.day.max()],
                          np.r_[purchases.amount, 5.0])
    summary = summarize(late, CALIBRATION_END)
    assert late.customers == 2358 and summary.size == 2357 and summary.holdout.sum() == 1882


def test_whitespace_log_with_a_header_like_the_cdnow_master_file(tmp_path: Path) -> None:
    raw = pd.read_csv(CDNOW_SAMPLE, sep=r"\s+", header=None, dtype=str,
                      names=["master_id", "customer_id", "date", "cds", "amount"])
    lines = [" customer_id  date number_of_cds  dollar_value"]
    lines += [f" {c} {d}  {n}   {a}" for c, d, n, a in zip(raw.customer_id, raw.date, raw.cds, raw.amount)]
    path = tmp_path / "master.txt"
    path.write_text("\n".join(lines) + "\n")
    result = invoke(path, "--calibration-end", "1997-09-30", "--amount-column", "dollar_value", "--model", "bgnbd")
    assert result.exit_code == 0, result.output
    assert "-9,582.43" in result.output


# ------------------------------------------------------------------------------------- likelihoods


def test_summed_likelihoods_and_gradients_agree_with_theory(cdnow: CustomerSummary) -> None:
    """The fast sums equal sim.model.theory's per-customer log-likelihoods; analytic gradients equal differences."""
    x, t_x, T = cdnow.x, cdnow.t_x, cdnow.T
    histories = CompressedHistories.of(cdnow)
    assert histories.weight.sum() == cdnow.size and histories.x.size < cdnow.size
    data = likelihoods.Histories.of(histories)
    bg = np.array([0.5, 3.0, 1.3, 4.0])
    value, gradient = likelihoods.bgnbd(data, *bg)
    assert value == pytest.approx(theory.bgnbd_log_likelihood(x, t_x, T, *bg).sum(), rel=1e-12)
    np.testing.assert_allclose(gradient, _central_gradient(
        lambda v: theory.bgnbd_log_likelihood(x, t_x, T, *v).sum(), bg), rtol=1e-6)

    paired = likelihoods.PairedHistories.of(histories)
    for pareto in ([0.5, 10.0, 0.6, 12.0], [0.8, 20.0, 1.5, 5.0]):  # alpha < beta and alpha > beta
        want = theory.paretonbd_log_likelihood(x, t_x, T, *pareto).sum()
        assert likelihoods.paretonbd(paired, *pareto) == pytest.approx(want, rel=1e-12)

    rep = x > 0
    spends = likelihoods.Spends.of(x[rep], cdnow.mean_spend[rep])
    gg = np.array([4.0, 2.5, 20.0])
    value, gradient = likelihoods.gamma_gamma(spends, *gg)
    assert value == pytest.approx(theory.gamma_gamma_log_likelihood(*gg, x[rep], cdnow.mean_spend[rep]).sum(),
                                  rel=1e-12)
    np.testing.assert_allclose(gradient, _central_gradient(
        lambda v: theory.gamma_gamma_log_likelihood(*v, x[rep], cdnow.mean_spend[rep]).sum(), gg), rtol=1e-6)


def _central_gradient(f, point: np.ndarray) -> np.ndarray:
    steps = np.eye(point.size) * point * 1e-6
    return np.array([(f(point + h) - f(point - h)) / (2 * h.sum()) for h in steps])


# ------------------------------------------------------------------------------------ the log door


def test_same_day_transactions_merge_and_formats_agree(tmp_path: Path) -> None:
    rows = [("a", "2024-01-05", 10.0), ("a", "2024-01-05", 5.0), ("a", "2024-02-01", 7.5), ("b", "2024-01-10", 3.0)]
    formats = {"iso.csv": ("%Y-%m-%d", None), "compact.csv": ("%Y%m%d", None),
               "european.csv": ("%d/%m/%Y", "%d/%m/%Y"), "stamped.csv": ("%Y-%m-%dT%H:%M:%S", None)}
    results = []
    for name, (shown, given) in formats.items():
        frame = pd.DataFrame(rows, columns=["customer_id", "date", "amount"])
        frame["date"] = pd.to_datetime(frame["date"]).dt.strftime(shown)
        frame.to_csv(tmp_path / name, index=False)
        purchases = read_log(tmp_path / name, date_format=given)
        results.append((purchases.customer.tolist(), purchases.day.tolist(), purchases.amount.tolist()))
    assert all(r == results[0] for r in results)
    customers, days, amounts = results[0]
    assert customers == [0, 0, 1] and amounts == [15.0, 7.5, 3.0]
    assert days[1] - days[0] == 27


def test_simulated_replications_are_different_customers(tmp_path: Path) -> None:
    frame = pd.DataFrame({"replication": [0, 0, 1], "customer_id": [7, 7, 7],
                          "date": pd.to_datetime(["2000-01-01", "2000-02-01", "2000-01-01"]),
                          "amount": [1.0, 2.0, 3.0], "time": [0.0, 31.0, 0.0]})
    frame.to_parquet(tmp_path / "transactions.parquet")
    purchases = read_log(tmp_path / "transactions.parquet")
    assert purchases.customers == 2 and purchases.customer.tolist() == [0, 0, 1]


def test_merge_same_day_renumbers_customers() -> None:
    purchases = merge_same_day(np.array([9, 3, 9, 3]), np.array([5, 2, 5, 1]), np.array([1.0, 2.0, 3.0, 4.0]))
    assert purchases.customer.tolist() == [0, 0, 1] and purchases.day.tolist() == [1, 2, 5]
    assert purchases.amount.tolist() == [4.0, 2.0, 4.0]


def _csv(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _regular_buyers(customers: int = 60, weeks: int = 30) -> str:
    """Every customer buys exactly once a week and never leaves: no model with dropout and Gamma
    heterogeneity has a finite maximum-likelihood estimate for this."""
    start = dt.date(2024, 1, 1)
    lines = ["customer_id,date,amount"]
    for c in range(customers):
        first = start + dt.timedelta(days=c % 14)
        lines += [f"c{c},{first + dt.timedelta(weeks=w)},{10 + c % 7 + w % 3}" for w in range(weeks)]
    return "\n".join(lines) + "\n"


GOOD_HEADER = "customer_id,date,amount\n"
BAD_LOGS = [
    # name, content, extra arguments, expected message, expected line (None: no line)
    ("missing_column.csv", "customer,date,amount\n1,2024-01-01,5\n", [], "no customer column 'customer_id'", 1),
    ("typo_hint.csv", "customer_id,date,amout\n1,2024-01-01,5\n", [], "did you mean 'amout'", 1),
    ("bad_date.csv", GOOD_HEADER + "1,2024-01-01,5\n2,2024-01-02,5\n3,2024-02-30,5\n", [],
     "date: cannot read '2024-02-30' as a date", 4),
    ("bad_amount.csv", GOOD_HEADER + "1,2024-01-01,5\n2,2024-01-02,$12.50\n", [],
     "amount: cannot read '$12.50' as an amount", 3),
    ("negative_amount.csv", GOOD_HEADER + "1,2024-01-01,5\n\n2,2024-01-02,-3\n", [], "negative amount -3", 4),
    ("missing_amount.csv", GOOD_HEADER + "1,2024-01-01,5\n2,2024-01-02,\n", [], "missing amount", 3),
    ("missing_customer.csv", GOOD_HEADER + "1,2024-01-01,5\n,2024-01-02,4\n", [], "missing customer id", 3),
    ("ambiguous_dates.csv", GOOD_HEADER + "1,03/04/2024,5\n2,05/06/2024,5\n", [], "ambiguous", None),
    ("wrong_format.csv", GOOD_HEADER + "1,2024-01-01,5\n", ["--date-format", "%d/%m/%Y"],
     "in the format %d/%m/%Y", 2),
    ("empty.csv", "", [], "is empty", 1),
    ("header_only.csv", GOOD_HEADER, [], "holds no transactions", None),
    ("too_short.csv", GOOD_HEADER + "1,2024-01-01,5\n1,2024-02-01,5\n2,2024-01-03,5\n", [],
     "too short to fit", None),
    ("end_before_start.csv", GOOD_HEADER + "1,2024-01-01,5\n", ["--calibration-end", "2023-12-31"],
     "before the first transaction", None),
    ("end_after_log.csv", GOOD_HEADER + "1,2024-01-01,5\n", ["--calibration-end", "2024-06-30"],
     "after the last transaction", None),
    ("no_convergence.csv", _regular_buyers(), [], "did not converge", None),
    ("no_convergence_bgnbd.csv", _regular_buyers(), ["--model", "bgnbd"], "BG/NBD: ", None),
    ("bad_chart.csv", GOOD_HEADER + "1,2024-01-01,5\n", ["--chart", "chart.gif"], "must end in .png", None),
    # a typo in a year would stretch the calibration period over millennia (minutes and gigabytes)
    ("year_9999.csv", GOOD_HEADER + "1,2024-01-01,5\n2,9999-01-01,5\n", [],
     "date 9999-01-01 is outside 1900-01-01 .. 2199-12-31", 3),
    ("year_1600.csv", GOOD_HEADER + "1,1600-01-01,5\n2,2024-01-01,5\n", [],
     "date 1600-01-01 is outside 1900-01-01 .. 2199-12-31", 2),
    ("bad_directive.csv", GOOD_HEADER + "1,2024-01-01,5\n", ["--date-format", "%Q"],
     "--date-format: cannot read dates", None),
]


@pytest.mark.parametrize(("name", "content", "extra", "expected", "line"), BAD_LOGS,
                         ids=[case[0] for case in BAD_LOGS])
def test_bad_logs_exit_2_with_file_line_and_reason(tmp_path: Path, name: str, content: str, extra: list,
                                                   expected: str, line: int | None) -> None:
    path = _csv(tmp_path, name, content)
    result = invoke(path, *extra)
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert "Traceback" not in result.output and "segments:" not in result.output
    if line is not None:
        assert f"{path}:{line}:" in result.output


def test_time_stamps_with_mixed_offsets_count_on_their_own_calendar_day(tmp_path: Path) -> None:
    """2024-01-01T23:30-05:00 is 2024-01-02 in UTC, but the customer bought on 2024-01-01."""
    path = _csv(tmp_path, "zones.csv", GOOD_HEADER + "a,2024-01-01T23:30:00-05:00,5\n"
                "b,2024-01-02T00:10:00+02:00,6\nc,2024-01-03T12:00:00Z,7\n")
    days = read_log(path).day
    start = (dt.date(2024, 1, 1) - dt.date(1970, 1, 1)).days
    assert sorted(days.tolist()) == [start, start + 1, start + 2]


def test_unreadable_inputs_exit_2(tmp_path: Path) -> None:
    assert "no such file" in invoke(tmp_path / "nowhere.csv").output
    assert "is a directory" in invoke(tmp_path).output
    (tmp_path / "binary.csv").write_bytes(b"\x00\x01\x02customer_id,date\n")
    assert "binary" in invoke(tmp_path / "binary.csv").output
    pd.DataFrame({"id": [1], "date": [pd.Timestamp("2024-01-01")]}).to_parquet(tmp_path / "tx.parquet")
    result = invoke(tmp_path / "tx.parquet")
    assert result.exit_code == 2 and "no customer column 'customer_id'" in result.output
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    result = invoke(tmp_path / "broken.parquet")
    assert result.exit_code == 2 and "cannot be read as a Parquet file" in result.output
    assert invoke(tmp_path / "tx.parquet", "--calibration-end", "30/09/1997").exit_code == 2  # click's check


def test_non_convergence_never_reports_parameters() -> None:
    """The API raises rather than returning a fit whose parameters ran off to the edge."""
    lines = _regular_buyers().splitlines()[1:]
    ids = [int(line.split(",")[0][1:]) for line in lines]
    days = [(dt.date.fromisoformat(line.split(",")[1]) - dt.date(2024, 1, 1)).days for line in lines]
    summary = summarize(merge_same_day(np.array(ids), np.array(days), np.full(len(ids), 10.0)), dt.date(2024, 8, 1))
    for fit in (fit_bgnbd, fit_paretonbd):
        with pytest.raises(FitError, match="did not converge|not identified"):
            fit(summary)


# --------------------------------------------------------------------------------------- RFM segments


def test_rfm_scores_and_groups(cdnow: CustomerSummary) -> None:
    scores = rfm_scores(cdnow)
    assert scores[["recency", "frequency", "monetary"]].isin(range(1, 6)).all().all()
    assert scores["frequency"][cdnow.x == 0].nunique() == 1  # tied customers share a score
    groups = rfm_segments(cdnow, 3)
    assert set(groups) == {0, 1, 2}
    means = [scores["rfm"][groups == g].mean() for g in range(3)]
    assert means == sorted(means)
    assert np.bincount(groups).min() > cdnow.size / 6  # near-equal thirds, ties kept together
    with pytest.raises(ValueError, match="distinct value"):
        rfm_segments(_alike(), 2)


def _alike(customers: int = 5) -> CustomerSummary:
    """Customers with identical histories: one RFM score."""
    ints, floats = np.zeros(customers, dtype=np.int64), np.full(customers, 10.0)
    return CustomerSummary(customer=np.arange(customers), x=ints, tx_days=ints, age_days=ints + 30,
                           first_day=ints, first_spend=floats, mean_spend=floats * 0, holdout=ints,
                           calibration_end=dt.date(2024, 1, 31), log_end=dt.date(2024, 1, 31))


@pytest.mark.parametrize("model", ["bgnbd", "paretonbd"])
def test_rfm_segments_decompose_the_pooled_fit(cdnow_csv: Path, tmp_path: Path, model: str) -> None:
    """The segments' laws come from the pooled fit: weighted by their shares, the segments' mean purchase
    rate and mean spend rate give back the pooled ones (at the maximum of the likelihood, the average
    posterior mean of a Gamma-distributed trait equals its prior mean: the score equation in alpha/gamma)."""
    calibration = calibrate(read_log(cdnow_csv), CALIBRATION_END, model=model, segments=3)
    pooled, spend = calibration.candidates[calibration.chosen].params, calibration.spend.params
    parts = calibration.segments
    assert [p.name for p in parts] == ["rfm_1", "rfm_2", "rfm_3"]
    assert sum(p.share for p in parts) == pytest.approx(1.0)
    rates = [p.behaviour.params["r"] / p.behaviour.params["alpha"] for p in parts]
    assert rates == sorted(rates) and rates[2] > 3 * rates[0]
    assert sum(p.share * rate for p, rate in zip(parts, rates)) == pytest.approx(pooled["r"] / pooled["alpha"],
                                                                                  rel=1e-3)
    spend_rates = [p.spend.params["q"] / p.spend.params["gamma"] for p in parts]
    assert sum(p.share * v for p, v in zip(parts, spend_rates)) == pytest.approx(spend["q"] / spend["gamma"],
                                                                                   rel=1e-3)
    assert all(0 < se < 0.5 * p.behaviour.params["r"] for p in parts for se in [p.behaviour.std_errors["r"]])
    by_segment = calibration.holdout.by_segment
    assert by_segment["customers"].tolist() == [p.customers for p in parts]
    assert by_segment["actual"].is_monotonic_increasing  # the RFM ranking holds in the holdout period
    block = segments_yaml(calibration)
    mix = re.search(r"#   segments: (\{.*\})", block).group(1)
    scenario = load_scenario(scenario_with(block, tmp_path, mix))
    assert list(scenario.segments) == ["rfm_1", "rfm_2", "rfm_3"]
    assert sum(scenario.acquisition[0].segments.values()) == pytest.approx(1.0, abs=1e-9)


# ------------------------------------------------------------------------------------------ round trip


def _simulate(tmp_path: Path, segment: dict, customers: int, seed: int) -> Path:
    """Run the engine on one segment (two replications of ``customers``), return transactions.parquet."""
    scenario = {"name": "truth", "horizon_months": 24, "replications": 2, "seed": seed,
                "economics": {"gross_margin": 0.3}, "segments": {"truth": segment},
                "acquisition": [{"channel": "web", "initial_customers": customers // 2,
                                 "new_per_month": customers // 6, "months": 3}]}
    path = tmp_path / "truth.yaml"
    path.write_text(yaml.safe_dump(scenario))
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "run"), "--transactions",
                                       "--workers", "1"])
    assert result.exit_code == 0, result.output
    return tmp_path / "run" / "transactions.parquet"


def _assert_recovered(estimates, truth: dict[str, float], max_relative_se: float) -> None:
    for name, true in truth.items():
        value, se = estimates.params[name], estimates.std_errors[name]
        assert se <= max_relative_se * true, f"{name}: standard error {se:.3g} too large for a check"
        assert abs(value - true) <= 4 * se, f"{name}: {value:.4g} vs {true:.4g}, {abs(value - true) / se:.1f} SE"


@pytest.mark.parametrize(("dropout", "truth", "bounds"), [
    ({"model": "per_purchase", "a": 0.8, "b": 4.0}, {"r": 0.5, "alpha": 8.0, "a": 0.8, "b": 4.0},
     {"r": 0.06, "alpha": 0.08, "a": 0.3, "b": 0.35}),
    ({"model": "hazard", "s": 0.7, "beta": 30.0, "beta_unit": "week"}, {"r": 0.5, "alpha": 8.0, "s": 0.7, "beta": 30.0},
     {"r": 0.08, "alpha": 0.1, "s": 0.3, "beta": 0.4}),
], ids=["bgnbd", "paretonbd"])
def test_round_trip_through_the_engine(tmp_path: Path, dropout: dict, truth: dict, bounds: dict) -> None:
    """Simulate known parameters, export transactions.parquet, calibrate it: every estimate within 4 of its
    standard errors of the truth, with standard errors bounded (relative to the truth) so the check has power."""
    segment = {"purchases_per_year": {"r": truth["r"], "alpha": truth["alpha"], "alpha_unit": "week"},
               "dropout": dropout, "order_value": {"p": 4.0, "q": 5.0, "gamma": 40.0}}
    parquet = _simulate(tmp_path, segment, customers=12_000, seed=2024)
    model = "bgnbd" if dropout["model"] == "per_purchase" else "paretonbd"
    purchases = read_log(parquet)
    assert purchases.exact  # the simulated log's exact times: no same-day merging
    calibration = calibrate(purchases, dt.date(2000, 12, 31), model=model)
    summary = calibration.summary
    assert summary.size == 2 * 12_000
    for name, bound in bounds.items():
        _assert_recovered(calibration.segments[0].behaviour, {name: truth[name]}, bound)
    _assert_recovered(calibration.spend, {"p": 4.0, "q": 5.0, "gamma": 40.0}, 0.2)
    # The holdout year: predicted and actual totals within 4 standard errors of their difference (customers
    # are independent, so its variance is the sum of the squared per-customer residuals).
    expected = conditional_expected_purchases(calibration.chosen, calibration.segments[0].behaviour.params,
                                              summary.holdout_weeks, summary)
    se = math.sqrt(np.sum((summary.holdout - expected) ** 2))
    assert se <= 0.02 * calibration.holdout.actual
    assert abs(calibration.holdout.actual - calibration.holdout.predicted) <= 4 * se

    out = tmp_path / "fitted.yaml"
    result = invoke(parquet, "--calibration-end", "2000-12-31", "--model", model, "-o", out)
    assert result.exit_code == 0, result.output
    fitted = load_scenario(out).segments["calibrated"]
    true_rate = truth["r"] / truth["alpha"] * WEEKS_PER_YEAR
    assert fitted.purchases_per_year.law().mean == pytest.approx(true_rate, rel=0.1)


def test_log_columns_are_configurable(tmp_path: Path) -> None:
    frame = pd.DataFrame({"who": ["x", "x", "y"], "when": ["2024-01-01", "2024-01-09", "2024-01-02"],
                          "paid": [1.0, 2.0, 3.0]})
    frame.to_csv(tmp_path / "log.csv", sep=";", index=False)
    purchases = read_log(tmp_path / "log.csv", LogColumns(customer="who", date="when", amount="paid"))
    assert purchases.customers == 2 and purchases.amount.tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(InputError, match="must differ"):
        read_log(tmp_path / "log.csv", LogColumns(customer="who", date="who", amount="paid"))


# -- the customer table (calibrate --customers) ----------------------------------------------------------

@pytest.fixture(scope="module")
def customers_of_cdnow(tmp_path_factory, cdnow_csv) -> tuple[pd.DataFrame, dict]:
    """The customer table of the CDNOW sample at 1997-09-30 under BG/NBD, through the command line."""
    out = tmp_path_factory.mktemp("customers") / "customers.parquet"
    result = invoke(cdnow_csv, "--calibration-end", "1997-09-30", "--model", "bgnbd", "--customers", str(out),
                    "--margin", "0.3", "--annual-discount-rate", "0.1")
    assert result.exit_code == 0, result.output
    import pyarrow.parquet as pq

    from sim.calibration.customers import METADATA_KEY
    return pd.read_parquet(out), json.loads(pq.read_schema(out).metadata[METADATA_KEY])


def test_customer_table_has_every_cohort_customer_with_its_history(customers_of_cdnow, cdnow_csv) -> None:
    """History columns against pandas on the raw log (an independent computation): one row per customer
    of the cohort, its last purchase by the calibration end and its spend in the 365 days before it."""
    table, record = customers_of_cdnow
    assert record["model"] == "BG/NBD" and record["calibration_end"] == "1997-09-30"
    assert len(table) == 2357 and table["customer_id"].is_unique
    raw = pd.read_csv(cdnow_csv, dtype={"customer_id": str, "date": str})
    raw["date"] = pd.to_datetime(raw["date"], format="%Y%m%d")
    before = raw[raw["date"] <= "1997-09-30"]
    last = before.groupby("customer_id")["date"].max().dt.date
    spend = before[before["date"] > pd.Timestamp("1997-09-30") - pd.Timedelta(days=365.25)] \
        .groupby("customer_id")["amount"].sum()
    rows = table.set_index("customer_id")
    assert (rows["last_purchase_date"] == last.reindex(rows.index)).all()
    np.testing.assert_allclose(rows["spend_12m"], spend.reindex(rows.index).fillna(0.0), rtol=1e-12)
    repeaters = rows["repeat_purchases"] > 0
    assert (rows.loc[~repeaters, "recency_weeks"] == 0).all()
    assert (rows["recency_weeks"] <= rows["age_weeks"]).all() and rows["age_weeks"].between(27, 38.86).all()
    # a customer without repeat purchases is expected to spend the population mean p gamma / (q - 1)
    p, q, gamma = (record["segments"]["calibrated"]["spend"][k] for k in ("p", "q", "gamma"))
    np.testing.assert_allclose(rows.loc[~repeaters, "expected_order_value"], p * gamma / (q - 1), rtol=1e-12)
    np.testing.assert_allclose(rows["expected_residual_clv"],
                               0.3 * rows["expected_order_value"] * rows["expected_residual_purchases_discounted"])
    assert rows["p_alive"].between(0, 1).all() and (rows.loc[~repeaters, "p_alive"] == 1).all()


def test_discounted_residual_purchases_match_the_pareto_nbd_closed_form() -> None:
    """DERT by quadrature (about 1e-11) against Fader, Hardie & Lee (2005, "RFM and CLV", eq. 2):
    alpha^r beta^s delta^(s-1) Gamma(r+x+1) U(s, s; delta (beta+T)) / (Gamma(r) (alpha+T)^(r+x+1) L)."""
    from scipy.special import gammaln, hyperu

    from sim.calibration.customers import _behaviour
    from sim.calibration.mle import Estimates
    from sim.calibration.pipeline import SegmentFit
    from sim.calibration.summary import CompressedHistories

    params = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}   # CDNOW, weeks
    x = np.array([0.0, 1.0, 2.0, 7.0, 15.0, 3.0])
    t_x = np.array([0.0, 5.0, 30.0, 36.0, 38.0, 2.0])
    T = np.array([38.0, 38.0, 38.0, 38.0, 39.0, 30.0])
    delta = np.log1p(0.15) / (365.25 / 7)
    part = SegmentFit("s", x.size, 1.0, Estimates(params, {}), Estimates({}, {}), np.ones(x.size, bool))
    histories = CompressedHistories(x=x, t_x=t_x, T=T, weight=np.ones(x.size), index=np.arange(x.size))
    _, _, dert = _behaviour("Pareto/NBD", part, histories, delta)
    r, alpha, s, beta = params.values()
    log_l = theory.paretonbd_log_likelihood(x, t_x, T, **params)
    closed = np.exp(r * np.log(alpha) + s * np.log(beta) + (s - 1) * np.log(delta) + gammaln(r + x + 1)
                    + np.log(hyperu(s, s, delta * (beta + T))) - gammaln(r) - (r + x + 1) * np.log(alpha + T) - log_l)
    np.testing.assert_allclose(dert, closed, rtol=1e-9)


def test_discounted_residual_purchases_of_bgnbd_match_adaptive_quadrature() -> None:
    """BG/NBD has no closed form: the fixed rule against scipy's adaptive quad of the same integral."""
    from scipy.integrate import quad

    from sim.calibration.customers import _behaviour
    from sim.calibration.mle import Estimates
    from sim.calibration.pipeline import SegmentFit
    from sim.calibration.summary import CompressedHistories

    params = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    x, t_x, T = np.array([0.0, 2.0, 10.0]), np.array([0.0, 30.0, 37.0]), np.array([38.0, 38.0, 38.0])
    delta = np.log1p(0.10) / (365.25 / 7)
    part = SegmentFit("s", 3, 1.0, Estimates(params, {}), Estimates({}, {}), np.ones(3, bool))
    _, _, dert = _behaviour("BG/NBD", part, CompressedHistories(x, t_x, T, np.ones(3), np.arange(3)), delta)
    for i in range(3):
        def integrand(t, i=i):
            return delta * np.exp(-delta * t) * float(theory.bgnbd_conditional_expected_purchases(
                t, x[i], t_x[i], T[i], **params))
        want = quad(integrand, 0, np.inf, limit=500, epsabs=1e-13, epsrel=1e-12)[0]
        assert dert[i] == pytest.approx(want, rel=1e-9)
