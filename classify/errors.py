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
