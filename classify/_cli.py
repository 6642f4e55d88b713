"""Shared command-line plumbing: the ``--debug`` flag and the error-to-exit-code mapping.

Commands stay thin: they parse options, call the plain library function and print. Expected
failures (``ClassifyError``) become one line on stderr and the class's exit code; anything else is
a bug and says so. ``--debug`` re-raises to show the traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from .errors import ClassifyError


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Show defaults and keep the module docstring's line breaks in ``--help``."""


def make_parser(prog: str, doc: str | None) -> argparse.ArgumentParser:
    """An argument parser whose description is the command module's docstring."""
    parser = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=HelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    return parser


def run_main(job: Callable[[], int | None], *, debug: bool = False) -> int:
    """Run ``job`` and turn its failures into an exit code and a single stderr line."""
    try:
        code = job()
        return 0 if code is None else int(code)
    except ClassifyError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: say so, and how to see it
        if debug:
            raise
        print(f"internal error: {type(exc).__name__}: {exc}; rerun with --debug for the traceback", file=sys.stderr)
        return 1


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it into place.

    A crash or kill never leaves a half-written output: readers see the old file or the new one.
    The file gets the permissions the umask gives a new file, so colleagues on shared storage can
    read it as they could read a file written in place.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        os.chmod(tmp_path, 0o666 & ~current_umask())  # mkstemp makes 0600: give the mode any new file gets
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()
    return path


def current_umask() -> int:
    """The process umask, read without changing it where Linux shows it (``/proc/self/status``)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (not thread-safe, but only outputs use it)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write a text file atomically (UTF-8)."""
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))
