"""Headless Chromium driven over the DevTools protocol, with the standard library only (for test_page.py).

`Browser` starts `chromium --headless --remote-debugging-port=0`, reads the websocket address it
prints, and speaks just enough of RFC 6455 (one client, text frames, masked as a client must) to
send DevTools commands and wait for their replies. Every wait is bounded.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import urllib.request
from urllib.parse import urlparse

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    def __init__(self, timeout: float = 30.0) -> None:
        self.profile = tempfile.mkdtemp(prefix="chromium-test-")
        self.process = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
             "--remote-debugging-port=0", f"--user-data-dir={self.profile}", "--window-size=1000,1200",
             "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.timeout = timeout
        deadline = time.monotonic() + timeout
        address = None
        while address is None and time.monotonic() < deadline:
            line = self.process.stderr.readline()
            if not line and self.process.poll() is not None:
                break
            found = re.search(r"DevTools listening on (ws://\S+)", line)
            address = found.group(1) if found else None
        if address is None:
            self.close()
            raise RuntimeError("chromium did not start its DevTools server")
        port = urlparse(address).port
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=timeout) as response:
            page = next(t for t in json.load(response) if t["type"] == "page")
        self.socket = connect(page["webSocketDebuggerUrl"], timeout)
        self.next_id = 0

    def command(self, method: str, **params) -> dict:
        """Send one DevTools command and return its result (events in between are skipped)."""
        self.next_id += 1
        send_text(self.socket, json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(receive_text(self.socket))
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def evaluate(self, expression: str):
        result = self.command("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float | None = None):
        """Poll a JavaScript expression until it is truthy; its value."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.1)
        raise TimeoutError(f"{expression} stayed false for {timeout or self.timeout} s")

    def open(self, url: str) -> None:
        self.command("Page.navigate", url=url)
        self.wait_for(f"location.href === {json.dumps(url)} && document.readyState === 'complete'")

    def screenshot(self) -> bytes:
        return base64.b64decode(self.command("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"])

    def close(self) -> None:
        if getattr(self, "socket", None) is not None:
            self.socket.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def connect(url: str, timeout: float) -> socket.socket:
    """The websocket opening handshake (RFC 6455, section 4)."""
    parts = urlparse(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET {parts.path} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    response = b""
    while b"\r\n\r\n" not in response:
        chunk = sock.recv(4096)
        if not chunk:
            raise RuntimeError("the DevTools websocket closed during the handshake")
        response += chunk
    if b" 101 " not in response.split(b"\r\n")[0]:
        raise RuntimeError(f"websocket handshake refused: {response.splitlines()[0]!r}")
    return sock


def send_text(sock: socket.socket, text: str) -> None:
    """One final, masked text frame."""
    data = text.encode()
    header = bytes([0x81])
    if len(data) < 126:
        header += bytes([0x80 | len(data)])
    elif len(data) < 2**16:
        header += bytes([0x80 | 126]) + struct.pack(">H", len(data))
    else:
        header += bytes([0x80 | 127]) + struct.pack(">Q", len(data))
    mask = os.urandom(4)
    sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))


def receive_text(sock: socket.socket) -> str:
    """One whole message (continuation frames joined; the server never masks)."""
    payload = b""
    while True:
        first, second = read_exactly(sock, 2)
        length = second & 0x7F
        if length == 126:
            length = struct.unpack(">H", read_exactly(sock, 2))[0]
        elif length == 127:
            length = struct.unpack(">Q", read_exactly(sock, 8))[0]
        payload += read_exactly(sock, length)
        if first & 0x0F == 0x8:
            raise RuntimeError("the DevTools websocket was closed")
        if first & 0x80:
            return payload.decode()


def read_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise RuntimeError("the DevTools websocket closed mid-frame")
        data += chunk
    return data
