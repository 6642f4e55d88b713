"""Shared command-line plumbing: the ``--debug`` flag and the error-to-exit-code mapping.

Commands stay thin: they parse options, call the plain library function and print. Expected
failures (``ClassifyError``) become one line on stderr and the class's exit code; anything else is
a bug and says so. ``--debug`` re-raises to show the traceback.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from .errors import ClassifyError, ConfigError


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Show defaults and keep the module docstring's line breaks in ``--help``."""


def make_parser(prog: str, doc: str | None) -> argparse.ArgumentParser:
    """An argument parser whose description is the command module's docstring."""
    parser = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=HelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that ``finally`` blocks stop workers and keep resumable parts."""


def _on_sigterm(signum, frame) -> None:
    raise Terminated()


def run_main(job: Callable[[], int | None], *, debug: bool = False) -> int:
    """Run ``job`` and turn its failures into an exit code and a single stderr line.

    SIGTERM stops the job as Ctrl-C does (exit 143 instead of 130): cleanup code runs, where the
    default action would kill the process at once and leave its worker processes behind.
    """
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main_thread else None
    if main_thread:
        signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        code = job()
        return 0 if code is None else int(code)
    except ClassifyError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        print(f"{'terminated' if isinstance(exc, Terminated) else 'interrupted'}{': ' + str(exc) if str(exc) else ''}",
              file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    except Exception as exc:  # a bug: say so, and how to see it
        if debug:
            raise
        print(f"internal error: {type(exc).__name__}: {exc}; rerun with --debug for the traceback", file=sys.stderr)
        return 1
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


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


def _same(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return a.resolve() == b.resolve()
    except OSError:
        return False


def check_output(output: str | os.PathLike, inputs: Iterable[str | os.PathLike], suffixes: tuple[str, ...]) -> Path:
    """Refuse, before any work, an output file that would replace an input or cannot be written.

    Why: the output is written at the end of a run; ``-o`` naming an input would silently replace
    it, and an existing directory or a bad name would fail only after all the work was done.
    """
    output = Path(output)
    if output.suffix.lower() not in suffixes:
        raise ConfigError(f"{output}: output must end in {', '.join(suffixes[:-1])} or {suffixes[-1]}")
    for p in map(Path, inputs):
        if _same(output, p):
            raise ConfigError(f"{output}: is also an input; writing it would replace the input, choose another -o")
    if output.is_dir():
        raise ConfigError(f"{output}: is a directory; -o names the output file, e.g. {output / ('out' + suffixes[0])}")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{output}: cannot create its folder {output.parent} ({exc.strerror or exc})") from None
    if not os.access(output.parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{output}: cannot write in {output.parent} (permission denied)")
    return output
