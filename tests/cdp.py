"""A minimal Chrome DevTools Protocol client over tornado's websocket (tornado comes with
Jupyter): enough to evaluate JavaScript in a page headless Chromium has open and to click
in it, as a reader would. Chromium is started with ``--remote-debugging-port=0``; it writes
the port it chose into ``DevToolsActivePort`` in its user data dir."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from pathlib import Path
from typing import Any

from tornado.websocket import websocket_connect


class Page:
    def __init__(self, ws_url: str) -> None:
        self.ws_url = ws_url
        # A loop of its own, never made the thread's current one: a closed current loop broke
        # later tornado users in the same test process (snakeviz's import: "Event loop is closed").
        self.loop = asyncio.new_event_loop()
        self.conn = self.loop.run_until_complete(self._connect(ws_url))
        self.n = 0

    @staticmethod
    async def _connect(ws_url: str) -> Any:
        return await websocket_connect(ws_url, max_message_size=1 << 30)

    async def _read(self) -> Any:
        # Awaited inside this loop's run: tornado binds its futures to the running loop.
        return await self.conn.read_message()

    def call(self, method: str, **params: Any) -> Any:
        self.n += 1
        mid = self.n
        self.conn.write_message(json.dumps({"id": mid, "method": method, "params": params}))
        while True:
            msg = self.loop.run_until_complete(self._read())
            if msg is None:
                raise RuntimeError("DevTools closed the connection")
            data = json.loads(msg)
            if data.get("id") == mid:
                if "error" in data:
                    raise RuntimeError(data["error"])
                return data["result"]

    def js(self, expr: str) -> Any:
        r = self.call("Runtime.evaluate", expression=expr, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in r:
            raise RuntimeError(r["exceptionDetails"])
        return r["result"].get("value")

    def wait(self, expr: str, timeout: float = 60, what: str = "") -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = self.js(expr)
            if v:
                return v
            time.sleep(0.25)
        raise AssertionError(f"never true: {what or expr}")

    def click(self, x: float, y: float) -> None:
        """A left click at (x, y) in CSS pixels of the viewport."""
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def close(self) -> None:
        self.conn.close()
        self.loop.close()


def page_of(user_data_dir: Path, timeout: float = 30) -> Page:
    """The first page of the Chromium using ``user_data_dir``, once it listens."""
    port_file = user_data_dir / "DevToolsActivePort"
    deadline = time.monotonic() + timeout
    while not port_file.exists():
        if time.monotonic() > deadline:
            raise AssertionError("Chromium wrote no DevToolsActivePort")
        time.sleep(0.1)
    port = int(port_file.read_text().split()[0])
    while True:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list") as resp:
            targets = json.loads(resp.read())
        pages = [t for t in targets if t["type"] == "page"]
        if pages:
            return Page(pages[0]["webSocketDebuggerUrl"])
        time.sleep(0.1)
