"""Errors of classify, each with the process exit code the CLI returns for it.

Every class also subclasses a built-in exception, so library callers can catch either
(``except ValueError`` works for bad input). Messages follow one shape:
``<file>:<place>: <what is wrong>; <what to do>``.
"""

from __future__ import annotations


class ClassifyError(Exception):
    """Base of all expected failures; the CLI prints its message on one line."""

    exit_code = 1


class ConfigError(ClassifyError, ValueError):
    """A bad option or configuration value."""

    exit_code = 2


class InputError(ClassifyError, ValueError):
    """An unreadable or wrong-shaped input file (dump, gold file, corpus)."""

    exit_code = 3


class CodebookError(InputError):
    """The codebook YAML is missing, malformed or inconsistent."""


class ModelError(ClassifyError):
    """A model directory is missing, corrupt, foreign, tampered or from another codebook."""

    exit_code = 4


class NotFittedError(ModelError, AttributeError):
    """A model was used before ``fit`` (scikit-learn's wording, plus the fix)."""


def _owner(owner: str) -> str:
    return f" of {owner}" if owner else ""


def check_int(owner: str, name: str, value: object, lo: int, hi: int | None = None) -> None:
    """Raise ``ConfigError`` in scikit-learn's words unless ``value`` is an int in ``[lo, hi]``.

    One validator for every config class and CLI option, so every message has the same shape.
    """
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= lo and (hi is None or value <= hi)
    if not ok:
        rng = f"[{lo}, {'inf' if hi is None else hi}]"
        raise ConfigError(f"The '{name}' parameter{_owner(owner)} must be an int in the range {rng}. Got {value!r} instead.")


def check_float(owner: str, name: str, value: object, lo: float, hi: float | None = None, *, lo_open: bool = False) -> None:
    """``ConfigError`` unless ``value`` is a number in ``[lo, hi]`` (``(lo, hi]`` with ``lo_open``)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (value > lo if lo_open else value >= lo) \
        and (hi is None or value <= hi)
    if not ok:
        rng = f"{'(' if lo_open else '['}{lo}, {'inf)' if hi is None else f'{hi}]'}"
        raise ConfigError(f"The '{name}' parameter{_owner(owner)} must be a float in the range {rng}. Got {value!r} instead.")


def check_folds(owner: str, name: str, value: object) -> None:
    """Inner folds: 0 (no inner folds) or at least 2."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0 or value == 1:
        raise ConfigError(f"The '{name}' parameter{_owner(owner)} must be 0 or an int >= 2. Got {value!r} instead.")
