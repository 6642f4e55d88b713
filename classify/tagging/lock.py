"""One run per output: a lock file beside the output, holding the owner's PID, host and start time.

Why: two runs writing the same ``-o`` share ``<output>.parts/`` and mix or lose each other's rows.
The lock (``<output>.lock``) is created atomically (a complete file hard-linked into place, which
fails if one exists), so the second run refuses at once and says who holds it. A lock whose
process is gone, or whose PID now belongs to another process (its start time differs), is stale:
it is reported and taken over.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

from ..errors import ConfigError


def lock_path(output: Path) -> Path:
    return output.with_name(output.name + ".lock")


def process_start(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot (``/proc``), or None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def holder_alive(info: dict) -> bool:
    """True unless the lock's process is known to be gone (same host, PID dead or reused)."""
    if info.get("host") != socket.gethostname():
        return True  # another machine's process: cannot be checked from here
    pid = info.get("pid")
    if not isinstance(pid, int) or not _alive(pid):
        return False
    started = info.get("pid_start")
    return started is None or process_start(pid) in (None, started)


class OutputLock:
    """``with OutputLock(output):`` holds ``<output>.lock`` for the run; ``ConfigError`` if another run does."""

    def __init__(self, output: Path) -> None:
        self.path = lock_path(Path(output))
        self.held = False

    def __enter__(self) -> OutputLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            if self._create():
                return
            info = self._read()
            if info is None:
                raise ConfigError(f"{self.path}: unreadable lock file; if no classify run is writing this output, remove it")
            if info and holder_alive(info):
                raise ConfigError(f"{self.path}: another run (pid {info.get('pid')} on {info.get('host')}, started "
                                  f"{info.get('started')}) is writing this output; wait for it to end or choose another -o")
            if info and self._read() == info:  # still the same stale lock (not one a new run just took)
                print(f"note: {self.path}: stale lock of pid {info.get('pid')} (started {info.get('started')}, "
                      "no longer running); taking it over", file=sys.stderr)
                self.path.unlink(missing_ok=True)
        raise ConfigError(f"{self.path}: other runs keep taking this output's lock; wait for them to end or choose another -o")

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False

    def _create(self) -> bool:
        """Write the lock atomically: a complete temporary file, hard-linked to the lock's name."""
        info = {"pid": os.getpid(), "host": socket.gethostname(), "pid_start": process_start(os.getpid()),
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "argv": sys.argv}
        text = json.dumps(info)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        try:
            os.link(tmp, self.path)
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links: exclusive create, then write
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
            except FileExistsError:
                return False
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
        finally:
            tmp.unlink(missing_ok=True)
        self.held = True
        return True

    def _read(self) -> dict | None:
        try:
            info = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}  # released meanwhile: treated as stale, so the next create decides
        except (OSError, ValueError):
            return None
        return info if isinstance(info, dict) else None
