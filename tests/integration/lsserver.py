"""A throw-away Label Studio server for the round-trip test and the README screenshot.

``LabelStudioServer`` starts ``label-studio start`` on a free loopback port with its own data
folder, creates one user, logs in (a browser session) and mints a personal access token, the
token kind Label Studio 1.23 enables by default (legacy tokens stay off). ``stop`` ends the whole
process group it started and checks that nothing of it is left.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EMAIL, PASSWORD = "annotator@example.org", "classify-test-pass-1"
START_TIMEOUT = 240.0


def executable() -> str | None:
    """``label-studio`` of this Python's environment, else the one on PATH (``None``: not installed)."""
    here = Path(sys.executable).parent / "label-studio"
    return str(here) if here.exists() else shutil.which("label-studio")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabelStudioServer:
    """``label-studio start`` in its own process group and data folder; use as a context manager."""

    def __init__(self, program: str | None = None) -> None:
        self.executable = program or executable() or "label-studio"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.folder = Path(tempfile.mkdtemp(prefix="classify-labelstudio-"))
        self.proc: subprocess.Popen | None = None
        self.session = None
        self.token = ""

    def start(self) -> LabelStudioServer:
        import requests

        env = {**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": str(self.folder / "data"), "LATEST_VERSION_CHECK": "false",
               "COLLECT_ANALYTICS": "false", "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
               "HOME": str(self.folder)}
        log = open(self.folder / "server.log", "wb")  # noqa: SIM115 - closed with the folder
        self.proc = subprocess.Popen(
            [self.executable, "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(self.port),
             "--host", self.url, "--username", EMAIL, "--password", PASSWORD, "--data-dir", str(self.folder / "data")],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True, cwd=self.folder)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"label-studio exited with {self.proc.returncode}: {self.log()[-2000:]}")
            try:
                if requests.get(f"{self.url}/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(1)
        else:
            self.stop()
            raise RuntimeError(f"label-studio did not answer on {self.url} within {START_TIMEOUT:.0f} s")
        try:
            self.session = self._login()
            self.token = self._personal_access_token()
        except Exception:
            self.stop()
            raise
        return self

    def _login(self):
        """A logged-in browser session (Django's login form with its CSRF token)."""
        import requests

        s = requests.Session()
        s.get(f"{self.url}/user/login/", timeout=30)
        r = s.post(f"{self.url}/user/login/", data={"email": EMAIL, "password": PASSWORD,
                                                     "csrfmiddlewaretoken": s.cookies["csrftoken"]},
                   headers={"Referer": f"{self.url}/user/login/"}, timeout=30, allow_redirects=False)
        if "sessionid" not in s.cookies:
            raise RuntimeError(f"login to Label Studio failed (HTTP {r.status_code})")
        return s

    def _personal_access_token(self) -> str:
        """A new personal access token (a JWT refresh token; the SDK exchanges it for access tokens)."""
        r = self.session.post(f"{self.url}/api/token/", json={}, timeout=30,
                              headers={"X-CSRFToken": self.session.cookies["csrftoken"], "Referer": self.url})
        r.raise_for_status()
        return r.json()["token"]

    def client(self):
        from label_studio_sdk import LabelStudio

        return LabelStudio(base_url=self.url, api_key=self.token)

    def log(self) -> str:
        path = self.folder / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """SIGTERM to the server's process group, SIGKILL after 20 s; then check none of it is left."""
        if self.proc is not None and self.proc.poll() is None or self.alive():
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + 20
            while self.alive() and time.monotonic() < deadline:
                self.proc.poll()
                time.sleep(0.2)
            if self.alive():
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        if self.proc is not None:
            self.proc.poll()
        shutil.rmtree(self.folder, ignore_errors=True)

    def alive(self) -> bool:
        if self.proc is None:
            return False
        self.proc.poll()  # reap the leader if it has exited
        try:
            os.killpg(self.proc.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def __enter__(self) -> LabelStudioServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
