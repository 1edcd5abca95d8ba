"""Read-only analyses of a Graph: inspect, check, diff, verify, draw, calibrate."""
from .calibrate import Calibration, CalibrationError, calibrate
from .inspect import Summary, inspect

__all__ = ["Calibration", "CalibrationError", "Summary", "calibrate", "inspect"]
