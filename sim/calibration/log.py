"""Reading a transaction log: the door for calibration input (``docs/calibration.md`` "Input").

A log has one row per transaction: a customer id, a date and an amount (column names configurable). It is a
CSV file (comma, semicolon, tab or whitespace separated, with a header line) or a Parquet file, such as the
``transactions.parquet`` that ``loyalty-sim run --transactions`` writes (there a ``replication`` column, when
present, is part of the customer's identity: replications simulate different customers; and the exact
``time`` column is used, see :func:`read_log`).

Every problem is an :class:`sim.input.errors.InputError` naming the file, the column and the line (CSV) or row
(Parquet) of the first offending transaction. Same-day transactions of a customer are merged into one
purchase whose amount is their sum, as is usual before fitting buy-till-you-die models (Fader, Hardie & Lee
2005, "Counting your customers the easy way", Marketing Science 24(2)).
"""

from __future__ import annotations

import datetime as dt
import difflib
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from sim.input.errors import InputError, Problem

#: Date formats tried, in this order, when none is given (ISO 8601 also reads YYYYMMDD).
DATE_FORMATS = ("ISO8601", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%Y/%m/%d", "%d-%m-%Y", "%m-%d-%Y")
_SNIFF_ROWS = 2000
_EPOCH = np.datetime64("1970-01-01", "D")
#: Dates a transaction log may hold: far wider than any firm's records, narrow enough that a typo (the year
#: 9999, 1600) is caught instead of stretching the calibration period over millennia.
EARLIEST_DATE, LATEST_DATE = dt.date(1900, 1, 1), dt.date(2199, 12, 31)
#: A time-zone designator at the end of an ISO 8601 time stamp (Z, +02:00, -0500).
_ZONE = r"(?:Z|[+-]\d{2}:?\d{2})$"


@dataclass(frozen=True)
class LogColumns:
    """Names of the three columns a transaction log must have."""

    customer: str = "customer_id"
    date: str = "date"
    amount: str = "amount"


@dataclass(frozen=True)
class Purchases:
    """A transaction log after merging same-day transactions, sorted by customer then time.

    Attributes
    ----------
    customer : int64 array
        Customer code 0..customers-1 (in the order of the customers' ids).
    day : float64 array
        Time of the purchase in days since 1970-01-01: whole days (its date) for an ordinary log; the exact
        time for a log simulated by loyalty-sim (``exact``).
    amount : float64 array
        Sum of the customer's transaction amounts that day (the log's money unit).
    source : str
        The file read.
    transactions : int
        Rows read before merging.
    exact : bool
        True when ``day`` holds exact times (a simulated log's ``time`` column): purchases are then points
        in continuous time, as in the models, and only identical times would be merged.
    ids : object array or None
        The log's id of each customer code (``replication:id`` in a simulated log of several replications);
        None for a log built in memory from codes.
    """

    customer: np.ndarray
    day: np.ndarray
    amount: np.ndarray
    source: str
    transactions: int
    exact: bool = False
    ids: np.ndarray | None = None

    @property
    def customers(self) -> int:
        """Number of distinct customers."""
        return int(self.customer[-1]) + 1 if self.customer.size else 0

    @property
    def first_date(self) -> dt.date:
        """Date of the first purchase in the log."""
        return to_date(int(np.floor(self.day.min())))

    @property
    def last_date(self) -> dt.date:
        """Date of the last purchase in the log."""
        return to_date(int(np.floor(self.day.max())))

    def period_end(self, date: dt.date) -> float:
        """The time at which a calibration period that includes ``date`` ends.

        Logs in dates follow the published convention (Fader, Hardie & Lee 2005): a purchase's time is its
        date and the period ends at ``date`` itself (CDNOW's T = days from the first purchase to 1997-09-30,
        divided by 7). Exact times run to the end of ``date``.
        """
        return to_day(date) + (1.0 if self.exact else 0.0)


def to_day(date: dt.date) -> int:
    """Days since 1970-01-01 of a calendar date."""
    return int((np.datetime64(date, "D") - _EPOCH).astype(np.int64))


def to_date(day: int) -> dt.date:
    """The calendar date of a day number (days since 1970-01-01)."""
    return (_EPOCH + np.timedelta64(int(day), "D")).astype(dt.date)


def read_log(path: str | os.PathLike[str], columns: LogColumns = LogColumns(),
             date_format: str | None = None) -> Purchases:
    """Read, check and merge a transaction log (CSV or Parquet, by the file's suffix).

    Parameters
    ----------
    path : path of the log.
    columns : the names of the customer, date and amount columns.
    date_format : a ``strftime`` format such as ``%d/%m/%Y``; by default ISO 8601 (``2024-03-31``,
        ``20240331``, with or without a time of day) and common day-month-year forms are recognised,
        and an ambiguous one (``03/04/2024``) must be given explicitly.

    A Parquet log written by ``loyalty-sim run --transactions`` also has ``time`` (days since the start of
    the simulation, exact) beside ``date``: the exact times are then used and nothing is merged, since the
    simulated purchases are already the models' continuous-time events.

    Raises
    ------
    InputError
        Missing file or columns, empty log, missing values, unreadable dates or amounts, negative amounts.
    """
    source = str(path)
    frame, is_csv = _read_table(Path(path), source, columns)
    locate = _Locator(source, frame.index.to_numpy(), is_csv)
    customer, ids = _customer_codes(frame, columns, locate)
    day = _days(frame[columns.date], columns.date, date_format, locate)
    amount = _amounts(frame[columns.amount], columns.amount, locate)
    exact = _exact_times(frame, columns, day)
    merged = merge_same_day(customer, day if exact is None else exact, amount, source=source,
                            transactions=len(frame), exact=exact is not None)
    return replace(merged, ids=ids)   # codes are 0..n-1, all present, so merging keeps their order


def merge_same_day(customer: np.ndarray, day: np.ndarray, amount: np.ndarray, *, source: str = "<memory>",
                   transactions: int | None = None, exact: bool = False) -> Purchases:
    """Merge each customer's transactions at one time (one day, for whole days) and sort by customer, time.

    ``customer`` holds integer codes (any integers), ``day`` times in days since 1970-01-01 (whole days
    unless ``exact``), ``amount`` money. The customers of the result are renumbered 0..n-1 in the order of
    their codes.
    """
    customer = np.asarray(customer, dtype=np.int64)
    day = np.asarray(day, dtype=np.float64)
    order = _by_customer_then_time(customer, day)
    customer, day = customer[order], day[order]
    new_customer = np.r_[True, customer[1:] != customer[:-1]]
    new_purchase = new_customer | np.r_[True, day[1:] != day[:-1]]
    group = np.cumsum(new_purchase) - 1
    totals = np.bincount(group, weights=np.asarray(amount, dtype=np.float64)[order])
    codes = np.cumsum(new_customer[new_purchase]) - 1
    return Purchases(customer=codes, day=day[new_purchase], amount=totals, source=source,
                     transactions=len(order) if transactions is None else transactions, exact=exact)


def _by_customer_then_time(customer: np.ndarray, day: np.ndarray) -> np.ndarray:
    """The order that sorts by customer, then time; one integer key (twice as fast) for whole days."""
    if not day.size or not np.all(day == np.floor(day)):
        return np.lexsort((day, customer))
    low, span = int(day.min()), int(day.max() - day.min()) + 1
    if (int(customer.max()) - int(customer.min()) + 1) * span >= 2**62:  # the key would overflow
        return np.lexsort((day, customer))
    key = (customer - customer.min()) * span + (day.astype(np.int64) - low)
    return np.argsort(key)  # ties are the same customer and day, merged anyway


def _exact_times(frame: pd.DataFrame, columns: LogColumns, day: np.ndarray) -> np.ndarray | None:
    """Exact times (days since 1970-01-01) from a simulated log's ``time`` column, when it agrees with the dates.

    loyalty-sim writes ``date = start + floor(time)`` days, so the date's day number plus the fractional
    part of ``time`` is the exact time. Any other ``time`` column is ignored.
    """
    if "time" not in frame.columns or "time" in (columns.customer, columns.amount):
        return None
    time = frame["time"]
    if not pd.api.types.is_float_dtype(time) or time.isna().any():
        return None
    values = time.to_numpy(dtype=np.float64)
    whole = np.floor(values)
    offset = day - whole
    if not np.all(np.isfinite(values)) or np.ptp(offset) != 0:
        return None
    return day + (values - whole)


@dataclass(frozen=True)
class _Locator:
    """Turns a row position into the place a user can find it: a CSV line, or a Parquet row."""

    source: str
    index: np.ndarray
    is_csv: bool

    def problem(self, column: str, position: int, message: str, others: int = 0) -> Problem:
        row = int(self.index[position])
        more = f" (and {others:,} more row{'s' if others > 1 else ''})" if others else ""
        if self.is_csv:  # the header is line 1; blank lines are kept as rows, so rows map to lines
            return Problem(self.source, (column,), message + more, row + 2)
        return Problem(self.source, (column,), f"row {row + 1}: {message}{more}")

    def fail_at(self, column: str, bad: np.ndarray, message) -> None:
        """Raise for the first True of ``bad``; ``message(position)`` describes it."""
        positions = np.flatnonzero(bad)
        if positions.size:
            first = int(positions[0])
            raise InputError([self.problem(column, first, message(first), positions.size - 1)])


def _read_table(path: Path, source: str, columns: LogColumns) -> tuple[pd.DataFrame, bool]:
    """The rows of the log (blank lines dropped, original positions kept in the index) and whether it is CSV."""
    if not path.is_file():
        message = "is a directory, not a transaction log" if path.is_dir() else "no such file"
        raise InputError([Problem(source, (), message)])
    wanted = [columns.customer, columns.date, columns.amount]
    if len(set(wanted)) < 3:
        raise InputError([Problem(source, (), f"the customer, date and amount columns must differ "
                                  f"(given {', '.join(wanted)})")])
    is_csv = path.suffix.lower() not in (".parquet", ".pq")
    frame = _read_csv(path, source, wanted) if is_csv else _read_parquet(path, source, wanted)
    if frame.empty:
        raise InputError([Problem(source, (), "holds no transactions")])
    return frame, is_csv


def _read_parquet(path: Path, source: str, wanted: list[str]) -> pd.DataFrame:
    import pyarrow.parquet as pq

    try:
        names = list(pq.read_schema(path).names)
        _check_columns(source, names, wanted, line=None)
        extra = [name for name in ("replication", "time") if name in names and name not in wanted]
        return pd.read_parquet(path, columns=wanted + extra)
    except (OSError, ValueError) as exc:  # pyarrow's errors derive from these
        raise InputError([Problem(source, (), f"cannot be read as a Parquet file: {exc}")]) from None


def _read_csv(path: Path, source: str, wanted: list[str]) -> pd.DataFrame:
    sep, names = _csv_header(path, source)
    _check_columns(source, names, wanted, line=1)
    customer, date = wanted[0], wanted[1]
    try:
        frame = pd.read_csv(path, sep=sep, usecols=wanted, skip_blank_lines=False, encoding="utf-8-sig",
                            dtype={customer: str, date: str})
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError([Problem(source, (), f"cannot be read as a CSV file: {exc}")]) from None
    return frame[~frame.isna().all(axis=1).to_numpy()]  # blank lines (kept so that rows map to lines)


def _csv_header(path: Path, source: str) -> tuple[str, list[str]]:
    """The separator (sniffed from the header line: comma, semicolon, tab, else whitespace) and the names."""
    with path.open("rb") as handle:
        raw = handle.readline()
    if b"\x00" in raw:
        raise InputError([Problem(source, (), "is a binary file, not a CSV text file")])
    try:
        line = raw.decode("utf-8-sig").strip("\r\n")
    except UnicodeDecodeError as exc:
        raise InputError([Problem(source, (), f"is not UTF-8 text (byte {exc.start})", 1)]) from None
    if not line.strip():
        raise InputError([Problem(source, (), "is empty: the first line must name the columns", 1)])
    for sep in (",", ";", "\t"):
        if sep in line:
            return sep, [name.strip().strip('"') for name in line.split(sep)]
    return r"\s+", line.split()


def _check_columns(source: str, names: list[str], wanted: list[str], line: int | None) -> None:
    options = {"customer": "--customer-column", "date": "--date-column", "amount": "--amount-column"}
    problems = []
    for role, name in zip(options, wanted):
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
            hint = f"did you mean '{close[0]}'? " if close else ""
            problems.append(Problem(source, (), f"no {role} column '{name}' (the columns are "
                                    f"{', '.join(names) or 'none'}); {hint}name it with {options[role]}", line))
    if problems:
        raise InputError(problems)


def _customer_codes(frame: pd.DataFrame, columns: LogColumns, locate: _Locator) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes 0..n-1 of the customers, and the id of each code; a ``replication`` column (simulated
    logs) is part of the identity."""
    ids = frame[columns.customer]
    locate.fail_at(columns.customer, ids.isna().to_numpy(), lambda _: "missing customer id")
    if ids.dtype == object or pd.api.types.is_string_dtype(ids):
        stripped = ids.str.strip()
        locate.fail_at(columns.customer, (stripped == "").to_numpy(), lambda _: "empty customer id")
        ids = stripped
    codes, names = pd.factorize(ids)
    names = np.asarray(names).astype(str).astype(object)
    if "replication" in frame.columns and columns.customer != "replication":
        replication, runs = pd.factorize(frame["replication"])
        combined = replication.astype(np.int64) * (codes.max() + 1) + codes
        codes, keys = pd.factorize(combined)
        keys = np.asarray(keys)
        names = np.array([f"{runs[k // (names.size)]}:{names[k % names.size]}" for k in keys], dtype=object)
    return codes.astype(np.int64), names


def _days(dates: pd.Series, column: str, date_format: str | None, locate: _Locator) -> np.ndarray:
    """Day numbers (days since 1970-01-01) of the dates, as floats; the time of day, if any, is dropped.

    A time stamp with a time-zone offset counts on its own calendar day (the customer's), so logs that mix
    offsets read as their local dates. Dates outside EARLIEST_DATE .. LATEST_DATE are refused."""
    locate.fail_at(column, dates.isna().to_numpy(), lambda _: "missing date")
    if pd.api.types.is_datetime64_any_dtype(dates):
        parsed = dates
    else:
        text = dates.astype(str).str.strip()
        if date_format is None or "%z" not in date_format:
            text = text.str.replace(_ZONE, "", regex=True)
        fmt = date_format or _guess_date_format(text, column, locate)
        parsed = _parse_dates(text, fmt, locate.source)
        shown = "ISO 8601 (2024-03-31)" if fmt == "ISO8601" else fmt
        values = text.to_numpy()
        locate.fail_at(column, parsed.isna().to_numpy(),
                       lambda i: f"cannot read {values[i]!r} as a date in the format {shown} "
                                 "(give the format with --date-format)")
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_localize(None)
    days = (parsed.to_numpy().astype("datetime64[D]") - _EPOCH).astype(np.int64)
    shown_dates = parsed.dt.strftime("%Y-%m-%d").to_numpy()
    locate.fail_at(column, (days < to_day(EARLIEST_DATE)) | (days > to_day(LATEST_DATE)),
                   lambda i: f"date {shown_dates[i]} is outside {EARLIEST_DATE} .. {LATEST_DATE} (a typo?)")
    return days.astype(np.float64)


def _parse_dates(text: pd.Series, fmt: str, source: str) -> pd.Series:
    """``pd.to_datetime`` in ``fmt``; unreadable values become NaT, a format pandas refuses is bad input."""
    try:
        return pd.to_datetime(text, format=fmt, errors="coerce")
    except (ValueError, OverflowError) as exc:   # a bad directive (%Q), mixed offsets under %z
        raise InputError([Problem("--date-format", (), f"cannot read dates of {source} with {fmt!r}: {exc}")]) from None


def _guess_date_format(text: pd.Series, column: str, locate: _Locator) -> str:
    """The first of DATE_FORMATS that reads a sample of the dates; refuse ambiguous day/month orders."""
    sample = text.iloc[:_SNIFF_ROWS]
    readable = {}
    for fmt in DATE_FORMATS:
        parsed = pd.to_datetime(sample, format=fmt, errors="coerce")
        if parsed.notna().all():
            readable[fmt] = parsed
    if not readable:
        best = max(DATE_FORMATS, key=lambda f: pd.to_datetime(sample, format=f, errors="coerce").notna().sum())
        bad = pd.to_datetime(sample, format=best, errors="coerce").isna().to_numpy()
        values = sample.to_numpy()
        locate.fail_at(column, bad, lambda i: f"cannot read {values[i]!r} as a date (expected ISO 8601 such "
                                              "as 2024-03-31, or give the format with --date-format)")
    formats = list(readable)
    first = readable[formats[0]]
    for other in formats[1:]:
        if not readable[other].equals(first):
            raise InputError([Problem(locate.source, (column,), (
                f"the dates are ambiguous: they read as {formats[0]} and as {other}; give the format "
                "with --date-format"))])
    return formats[0]


def _amounts(amounts: pd.Series, column: str, locate: _Locator) -> np.ndarray:
    """The amounts as floats: present, numeric, finite and not negative."""
    locate.fail_at(column, amounts.isna().to_numpy(), lambda _: "missing amount")
    if not pd.api.types.is_numeric_dtype(amounts) or pd.api.types.is_bool_dtype(amounts):
        text = amounts.astype(str).str.strip()
        numbers = pd.to_numeric(text, errors="coerce")
        values = text.to_numpy()
        locate.fail_at(column, numbers.isna().to_numpy(),
                       lambda i: f"cannot read {values[i]!r} as an amount (a plain number such as 12.50)")
        amounts = numbers
    values = amounts.to_numpy(dtype=np.float64)
    locate.fail_at(column, ~np.isfinite(values), lambda i: f"amount {values[i]} is not a finite number")
    locate.fail_at(column, values < 0, lambda i: (
        f"negative amount {values[i]:g}: net returns and refunds out of the purchases they refund "
        "(or drop them) before calibrating"))
    return values
