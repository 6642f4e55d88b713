"""Make docs/labelstudio.png: the Label Studio labelling page of one post with its pre-annotations.

    python docs/labelstudio_screenshot.py [--model DIR] [--out docs/labelstudio.png]

Needs the annotate extra and Debian's ``chromium``. Starts a throw-away Label Studio server
(tests/integration/lsserver.py), makes a project from ``labels labelstudio config`` and tasks from
``labels labelstudio tasks`` for the English posts of the dumps round, logs headless Chromium in
with the server's session cookie over the DevTools pipe (no extra Python package), opens the task
and saves the screenshot; then stops the server and the browser.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))


class Browser:
    """Headless Chromium driven through ``--remote-debugging-pipe`` (NUL-separated JSON on fds 3/4)."""

    def __init__(self, width: int, height: int) -> None:
        to_browser_r, self._w = os.pipe()
        self._r, from_browser_w = os.pipe()
        self.profile = tempfile.mkdtemp(prefix="classify-chromium-")

        # the shell puts the pipe ends on fds 3 and 4, where Chromium expects them
        cmd = ("exec chromium --headless=new --remote-debugging-pipe --no-sandbox --disable-gpu --no-first-run "
               f"--user-data-dir={self.profile} --window-size={width},{height} about:blank "
               f"3<&{to_browser_r} 4>&{from_browser_w}")
        self.proc = subprocess.Popen(["bash", "-c", cmd], pass_fds=(to_browser_r, from_browser_w),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buf, self._id = b"", 0
        self.size = (width, height)

    def call(self, method: str, session: str | None = None, **params):
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params, **({"sessionId": session} if session else {})}
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        while True:
            while b"\0" not in self._buf:
                chunk = os.read(self._r, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed the DevTools pipe")
                self._buf += chunk
            raw, self._buf = self._buf.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def screenshot(self, url: str, cookies: dict[str, str], out: Path, wait: float) -> None:
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        s = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for name, value in cookies.items():
            self.call("Network.setCookie", s, name=name, value=value, url=url)
        w, h = self.size
        self.call("Emulation.setDeviceMetricsOverride", s, width=w, height=h, deviceScaleFactor=1, mobile=False)
        self.call("Page.enable", s)
        self.call("Page.navigate", s, url=url)
        time.sleep(wait)
        data = self.call("Page.captureScreenshot", s, format="png")["data"]
        out.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        import shutil
        import signal

        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                self.proc.poll()
                try:
                    os.killpg(self.proc.pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.2)
        shutil.rmtree(self.profile, ignore_errors=True)


def pick_post(tasks: list[dict]) -> int:
    """The first English task of 3 to 6 paragraphs whose pre-annotation has a topic and a frame."""
    for k, t in enumerate(tasks):
        kinds = {r["from_name"] for r in t["predictions"][0]["result"]}
        if t["data"]["lang"] == "en" and 3 <= len(t["data"]["paragraphs"]) <= 6 and {"topics", "frames"} <= kinds:
            return k
    return 0


def main() -> int:
    from lsserver import LabelStudioServer

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="model folder for the pre-annotations (default: the cue rule)")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "labelstudio.png")
    ap.add_argument("--page", default="data?task={task}", help="page of the project to show")
    ap.add_argument("--wait", type=float, default=12.0, help="seconds for the page to render")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="classify-shot-"))
    py = [sys.executable, "-m", "classify.labels"]
    subprocess.run(py + ["labelstudio", "config", "-o", str(work / "config.xml")], check=True, cwd=REPO)
    model = ["--model", args.model] if args.model else []
    subprocess.run(py + ["labelstudio", "tasks", "labels/rounds/dumps/posts.jsonl", "-o", str(work / "tasks.json"), *model],
                   check=True, cwd=REPO)
    tasks = json.loads((work / "tasks.json").read_text(encoding="utf-8"))
    task = tasks[pick_post(tasks)]
    version = task["predictions"][0]["model_version"]
    with LabelStudioServer() as server:
        ls = server.client()
        project = ls.projects.create(title="classify: next posts to label", label_config=(work / "config.xml").read_text(),
                                     model_version=version, show_collab_predictions=True)
        ls.projects.import_tasks(id=project.id, request=[task])
        ls.projects.update(id=project.id, model_version=version, show_collab_predictions=True)  # pre-label with it
        task_id = next(iter(ls.tasks.list(project=project.id))).id
        browser = Browser(1400, 1500)
        try:
            browser.screenshot(f"{server.url}/projects/{project.id}/{args.page.format(task=task_id)}",
                               {k: v for k, v in server.session.cookies.items()}, args.out, args.wait)
        finally:
            browser.close()
    print(f"wrote {args.out} (post {task['data']['post_id']}, pre-annotations by {version})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
