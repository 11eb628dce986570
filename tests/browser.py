"""A small driver for headless Chromium over the DevTools protocol, for the browser tests.

One browser, one page: ``goto`` a URL, ``evaluate`` JavaScript in it, ``wait_for`` a condition
(the MLflow UI is a React app that fills its DOM after load), ``screenshot`` the page or a part
of it. Chromium runs in its own process group with a fresh profile folder, and both are gone
after ``close``. A browser that cannot start raises: the tests fail rather than skip.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

import websocket

from dashboards.screenshot import HEADLESS_FLAGS, find_chromium

START_TIMEOUT_S = 30
COMMAND_TIMEOUT_S = 60


class BrowserError(RuntimeError):
    """Chromium did not start, or a DevTools command failed."""


class Chromium:
    """Headless Chromium with one page, driven over the DevTools protocol.

    Args:
        width: Window width in CSS pixels.
        height: Window height in CSS pixels.
    """

    def __init__(self, *, width: int = 1600, height: int = 1000) -> None:
        self._profile = tempfile.TemporaryDirectory(prefix="chromium-test-")
        profile = Path(self._profile.name)
        self._log = (profile / "chromium.log").open("w")
        command = [find_chromium(), *HEADLESS_FLAGS, f"--user-data-dir={profile / 'user'}",
                   "--remote-debugging-port=0", "--remote-allow-origins=*",
                   f"--window-size={width},{height}", "about:blank"]
        self._process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        self._next_id = 0
        try:
            self._socket = websocket.create_connection(self._page_socket(profile / "user"),
                                                       timeout=COMMAND_TIMEOUT_S,
                                                       suppress_origin=True)
        except Exception:
            self.close()
            raise

    def _page_socket(self, user_dir: Path) -> str:
        """Waits for Chromium's DevTools port and returns the page's websocket URL."""
        port_file = user_dir / "DevToolsActivePort"
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise BrowserError(f"chromium exited with {self._process.returncode}: "
                                   f"{self._log_tail()}")
            if port_file.is_file() and port_file.read_text().strip():
                port = int(port_file.read_text().split()[0])
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
                    targets = json.load(r)
                pages = [t for t in targets if t.get("type") == "page"]
                if pages:
                    return str(pages[0]["webSocketDebuggerUrl"])
            time.sleep(0.1)
        raise BrowserError(f"chromium gave no DevTools port within {START_TIMEOUT_S} s: "
                           f"{self._log_tail()}")

    def _log_tail(self) -> str:
        self._log.flush()
        text = (Path(self._profile.name) / "chromium.log").read_text(errors="replace")
        return " ".join(text.split()[-60:])

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Sends one DevTools command and returns its result (events are ignored)."""
        self._next_id += 1
        self._socket.send(json.dumps({"id": self._next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._socket.recv())
            if message.get("id") != self._next_id:
                continue
            if "error" in message:
                raise BrowserError(f"{method}: {message['error']}")
            result: dict[str, Any] = message.get("result", {})
            return result

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises are awaited)."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True,
                           awaitPromise=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression[:80]}: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def goto(self, url: str, *, timeout: float = 30) -> None:
        """Navigates and waits until the document has loaded (images included)."""
        self.send("Page.navigate", url=url)
        time.sleep(0.2)  # let the navigation replace the previous document first
        self.wait_for("document.readyState === 'complete'", timeout=timeout)

    def wait_for(self, expression: str, *, timeout: float = 30, interval: float = 0.25) -> None:
        """Polls the JavaScript ``expression`` until it is truthy.

        Raises:
            TimeoutError: Still falsy after ``timeout`` seconds; the message quotes the page.
        """
        deadline = time.monotonic() + timeout
        while True:
            if self.evaluate(f"Boolean({expression})"):
                return
            if time.monotonic() > deadline:
                text = self.evaluate("document.body ? document.body.innerText : ''") or ""
                raise TimeoutError(f"{expression!r} still false after {timeout} s; page text: "
                                   f"{' '.join(str(text).split())[:600]}")
            time.sleep(interval)

    def screenshot(self, path: Path, *, clip: dict[str, float] | None = None) -> Path:
        """Saves a PNG of ``clip`` (page coordinates in CSS pixels), or of the whole page."""
        if clip is None:
            size = self.evaluate("[document.documentElement.scrollWidth, "
                                 "document.documentElement.scrollHeight]")
            clip = {"x": 0, "y": 0, "width": size[0], "height": size[1]}
        result = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                           clip={**clip, "scale": 1})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(result["data"]))
        return path

    def close(self) -> None:
        """Closes the connection, ends Chromium's process group, removes the profile."""
        socket = getattr(self, "_socket", None)
        if socket is not None:
            socket.close()
        if self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait(timeout=10)
        self._log.close()
        self._profile.cleanup()

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()
