"""Customer tables in: the existing customers of a scenario (``existing_customers: {file: ...}``), read and
checked into the :class:`~sim.schema.existing.CustomerBase` the scenario carries to the engines.

The table is the one ``loyalty-sim calibrate LOG --customers customers.parquet`` writes (``docs/calibration.md``),
or any Parquet file with its history columns. Every problem names the file, the column and the first row
(counted from 1) where it occurs, and the CLI exits with status 2.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from sim.input.documents import Document, is_file
from sim.input.errors import InputError, Problem
from sim.schema import Scenario
from sim.schema.behaviour import HazardDropout
from sim.schema.existing import CustomerBase, ExistingFromFile
from sim.schema.units import WEEKS_PER_YEAR

if TYPE_CHECKING:   # numpy, pandas and pyarrow are imported when a table is read: `validate` stays light otherwise
    import numpy as np

#: What the table must hold: the id and the history the models condition on.
REQUIRED_COLUMNS = ("customer_id", "repeat_purchases", "recency_weeks", "age_weeks", "mean_repeat_spend",
                    "spend_12m")
#: What ``calibrate --customers`` writes besides (read past, not used), and the optional opening balance.
OTHER_COLUMNS = ("segment", "first_purchase_date", "last_purchase_date", "p_alive", "expected_purchases_12m",
                 "expected_order_value", "expected_residual_purchases_discounted", "expected_residual_clv",
                 "points_balance")
#: The Parquet metadata key under which ``calibrate`` records the model the table was fitted with
#: (:data:`sim.calibration.customers.METADATA_KEY`).
METADATA_KEY = b"loyalty_sim.customers"
#: The model each dropout kind of a segment is, as ``calibrate`` names it.
MODEL_OF_DROPOUT = {"per_purchase": "BG/NBD", "hazard": "Pareto/NBD"}
#: Slack for recency > age from rounding (weeks): a second.
_SLACK_WEEKS = 1.0 / (7 * 86400)


def table_path(scenario_path: str | os.PathLike[str], file: str) -> Path:
    """Where a customer table named in a scenario is: relative to the scenario file unless absolute."""
    target = Path(file)
    return target if target.is_absolute() else Path(scenario_path).parent / target


def attach_base(scenario: Scenario, doc: Document, scenario_path: str | os.PathLike[str]) -> Scenario:
    """``scenario`` carrying the histories of its existing customers, read from the table it names.

    Raises
    ------
    InputError
        The table is missing or unreadable (at the scenario's ``existing_customers.file`` key), or has a bad
        column or row (naming the table, the column and the row).
    """
    existing = scenario.existing_customers
    if not isinstance(existing, ExistingFromFile):   # none, or simulated by the engines
        return scenario
    path = table_path(scenario_path, existing.file)
    if not is_file(path):
        raise InputError([doc.problem(("existing_customers", "file"), (
            f"{path} does not exist; a customer table written by `loyalty-sim calibrate LOG --customers FILE`, "
            "relative to the scenario file"))])
    segment = scenario.segments[existing.segment]
    model = MODEL_OF_DROPOUT["hazard" if isinstance(segment.dropout, HazardDropout) else "per_purchase"]
    stat = path.stat()
    base = read_customer_table(str(path), model, stat.st_mtime_ns, stat.st_size)
    # the path made absolute, so that the scenario.yaml written beside the results reads the same table
    located = existing.model_copy(update={"file": str(path.resolve())})
    return scenario.model_copy(update={"existing_customers": located}).with_base(base)


@functools.lru_cache(maxsize=4)
def read_customer_table(source: str, model: str, mtime_ns: int = 0, size: int = 0) -> CustomerBase:
    """The histories of the customer table at ``source``, checked; ``model`` is the segment's model (BG/NBD
    or Pareto/NBD), which the table must not contradict. Cached by path, modification time and size (the
    points of a sweep share one table)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(source)
    except (OSError, pa.ArrowException) as exc:
        raise InputError([Problem(source, (), f"not a readable Parquet table ({exc})")]) from None
    _check_model(schema.metadata or {}, model, source)
    names = schema.names
    problems = [Problem(source, (name,), "required column is missing") for name in REQUIRED_COLUMNS
                if name not in names]
    problems += [Problem(source, (name,), f"unknown column; the columns are {', '.join(REQUIRED_COLUMNS)} and "
                                          f"optionally {', '.join(OTHER_COLUMNS)}")
                 for name in names if name not in REQUIRED_COLUMNS + OTHER_COLUMNS
                 and not name.startswith("__index_level_")]   # a pandas index written along: not data
    if problems:
        raise InputError(problems)
    read = list(REQUIRED_COLUMNS) + (["points_balance"] if "points_balance" in names else [])
    try:   # only the columns used: a table of a million customers reads in a fraction of a second
        table = pq.read_table(source, columns=read)
    except (OSError, pa.ArrowException) as exc:
        raise InputError([Problem(source, (), f"not a readable Parquet table ({exc})")]) from None
    if table.num_rows == 0:
        raise InputError([Problem(source, (), "the table has no customers")])
    ids = _ids(table.column("customer_id"))
    values = {name: _numbers(table, name, source) for name in REQUIRED_COLUMNS[1:]}
    points = _numbers(table, "points_balance", source) if "points_balance" in names else None
    _check_rows(ids, values, points, source)
    import pandas as pd

    return CustomerBase(
        id_hash=pd.util.hash_array(ids, categorize=False),
        repeat_purchases=values["repeat_purchases"].astype(np.int64),
        recency_years=np.minimum(values["recency_weeks"], values["age_weeks"]) / WEEKS_PER_YEAR,
        age_years=values["age_weeks"] / WEEKS_PER_YEAR,
        mean_repeat_spend=np.where(values["repeat_purchases"] > 0, values["mean_repeat_spend"], 0.0),
        spend_12m=values["spend_12m"],
        points_balance=None if points is None else points.astype(np.int64),
    )


def _ids(column) -> np.ndarray:
    """The customer ids as an object array of strings (None where missing): ids written as numbers are the
    same customers as the same ids written as text."""
    import pyarrow as pa

    if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
        column = column.cast(pa.string())
    return column.to_numpy(zero_copy_only=False)


def _check_model(metadata: dict, model: str, source: str) -> None:
    """A table ``calibrate`` wrote records its model: it must be the segment's."""
    if METADATA_KEY not in metadata:
        return
    try:
        fitted = json.loads(metadata[METADATA_KEY]).get("model")
    except (ValueError, AttributeError):
        raise InputError([Problem(source, (), "its loyalty-sim metadata is not readable JSON")]) from None
    if fitted is not None and fitted != model:
        raise InputError([Problem(source, (), (
            f"the table was fitted with the {fitted} model, but its customers are put in a {model} segment of the scenario: "
            f"P(alive) and the posterior of each customer depend on the model, so use a segment of the same "
            f"model (or run calibrate with --model)"))])


def _numbers(table, name: str, source: str) -> np.ndarray:
    import numpy as np
    import pyarrow as pa

    column = table.column(name)

    if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
        raise InputError([Problem(source, (name,), f"must hold numbers (it holds {column.type})")])
    values = column.to_numpy(zero_copy_only=False).astype(np.float64)
    return values


def _check_rows(ids: np.ndarray, values: dict[str, np.ndarray], points: np.ndarray | None, source: str) -> None:
    """Every row's history must be one a customer can have."""
    import numpy as np

    x, recency, age = values["repeat_purchases"], values["recency_weeks"], values["age_weeks"]
    checks = [("customer_id", _missing_ids(ids), "has no id"),
              ("customer_id", _repeated(ids), "repeats the id of an earlier row")]
    for name, column in values.items():
        checks.append((name, ~np.isfinite(column), "is missing or not a finite number"))
    checks += [
        ("repeat_purchases", (x < 0) | (x != np.floor(x)), "must be a whole number of repeat purchases, 0 or more"),
        ("age_weeks", age < 0, "must be 0 or more (weeks from the first purchase to the scenario start)"),
        ("recency_weeks", recency < 0, "must be 0 or more (weeks from the first purchase to the last)"),
        ("recency_weeks", recency > age + _SLACK_WEEKS, "is after age_weeks: the last purchase would come after "
                                                        "the scenario start"),
        ("recency_weeks", (x == 0) & (recency > _SLACK_WEEKS), "must be 0 without a repeat purchase"),
        ("mean_repeat_spend", values["mean_repeat_spend"] < 0, "must be 0 or more"),
        ("mean_repeat_spend", (x > 0) & (values["mean_repeat_spend"] <= 0),
         "must be above 0 for a customer with repeat purchases (the Gamma-Gamma model's spend is positive)"),
        ("spend_12m", values["spend_12m"] < 0, "must be 0 or more"),
    ]
    if points is not None:
        checks += [("points_balance", ~np.isfinite(points) | (points < 0) | (points != np.floor(points))
                    | (points > 2.0**53), "must be a whole number of points, 0 or more")]
    problems = []
    for name, bad, message in checks:
        rows = np.flatnonzero(bad)
        if rows.size:
            more = f" (and {rows.size - 1:,} more rows)" if rows.size > 1 else ""
            shown = values[name][rows[0]] if name in values else (points[rows[0]] if name == "points_balance"
                                                                   else ids[rows[0]])
            problems.append(Problem(source, (name,), f"row {rows[0] + 1:,} (customer_id {ids[rows[0]]!r}): "
                                                     f"{shown!r} {message}{more}"))
    if problems:
        raise InputError(problems)


def _missing_ids(ids: np.ndarray) -> np.ndarray:
    import pandas as pd

    return pd.isna(ids) | (ids == "")


def _repeated(ids: np.ndarray) -> np.ndarray:
    import pandas as pd

    return pd.Series(ids).duplicated().to_numpy()
