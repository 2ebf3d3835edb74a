"""Checks of configuration values, raising `ConfigurationError` that names the setting."""

from __future__ import annotations

import math

from oxanus_sync.errors import ConfigurationError


def check_seconds(name: str, value: object, *, allow_zero: bool = False) -> None:
    """Raise unless `value` is a finite number of seconds above 0 (or 0 with `allow_zero`)."""
    valid = (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (value > 0 or (allow_zero and value == 0))
    )
    if not valid:
        bound = "0 or more" if allow_zero else "above 0"
        raise ConfigurationError(
            f"{name} must be a finite number of seconds {bound}, got {value!r}"
        )


def check_integer(name: str, value: object, *, minimum: int) -> None:
    """Raise unless `value` is an int (not a bool) of at least `minimum`."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigurationError(f"{name} must be an integer of at least {minimum}, got {value!r}")


def check_number(name: str, value: object, *, low: float, high: float) -> None:
    """Raise unless `value` is a number between `low` and `high`, both included."""
    valid = isinstance(value, int | float) and not isinstance(value, bool) and low <= value <= high
    if not valid:
        raise ConfigurationError(f"{name} must be a number from {low:g} to {high:g}, got {value!r}")
