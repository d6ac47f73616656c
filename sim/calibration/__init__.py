"""Calibration: fit the behaviour models to a transaction log (``loyalty-sim calibrate``, docs/calibration.md "Input").

The path of a log through the package, one module per step:

- :mod:`~sim.calibration.log` reads and checks the log and merges same-day purchases;
- :mod:`~sim.calibration.summary` builds each customer's (x, t_x, T, mean spend) in weeks;
- :mod:`~sim.calibration.mle` maximises a likelihood in log space, with standard errors and convergence
  checks; :mod:`~sim.calibration.models` holds BG/NBD, Pareto/NBD and Gamma-Gamma;
- :mod:`~sim.calibration.rfm` cuts RFM segments; :mod:`~sim.calibration.pipeline` runs it all;
- :mod:`~sim.calibration.holdout` checks predictions after the calibration end and draws the chart;
- :mod:`~sim.calibration.output` writes the ``segments:`` YAML and prints the report.

Example::

    import datetime as dt
    from sim.calibration import calibrate, read_log, segments_yaml
    calibration = calibrate(read_log("transactions.csv"), dt.date(1997, 9, 30))
    print(calibration.segments[0].behaviour.params, calibration.holdout.predicted)
    print(segments_yaml(calibration))
"""

from sim.calibration.holdout import HoldoutCheck, holdout_check, tracking, tracking_figure
from sim.calibration.log import LogColumns, Purchases, merge_same_day, read_log
from sim.calibration.mle import Fit, FitError
from sim.calibration.models import fit_bgnbd, fit_gamma_gamma, fit_paretonbd
from sim.calibration.output import print_report, segments_yaml
from sim.calibration.pipeline import Calibration, SegmentFit, calibrate
from sim.calibration.summary import CustomerSummary, summarize

__all__ = [
    "Calibration", "CustomerSummary", "Fit", "FitError", "HoldoutCheck", "LogColumns", "Purchases", "SegmentFit",
    "calibrate", "fit_bgnbd", "fit_gamma_gamma", "fit_paretonbd", "holdout_check", "merge_same_day",
    "print_report", "read_log", "segments_yaml", "summarize", "tracking", "tracking_figure",
]
