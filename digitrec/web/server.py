"""Run the web app on uvicorn, on a socket bound up front so a busy port is a clear error; foreground or thread."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time

import uvicorn
from fastapi import FastAPI

DEFAULT_HOST = "127.0.0.1"
"""Only this machine can open the page unless the user asks for another address."""

DEFAULT_PORT = 8000
STARTUP_TIMEOUT_S = 15.0
WEBSOCKET_OVERHEAD_BYTES = 4096
"""Room above the upload cap for a WebSocket message's framing."""


class ServerError(RuntimeError):
    """The server could not start: the message names the address and the fix."""


def is_loopback(host: str) -> bool:
    """Whether `host` is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class WebServer:
    """The app on uvicorn at host:port (port 0 picks a free one); `run()` blocks, `start()` runs it in a thread."""

    def __init__(self, app: FastAPI, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT):
        if not 0 <= port <= 65535:
            raise ServerError(f"port {port} is not a TCP port; pass --port between 1 and 65535")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            self.socket = socket.create_server((host, port), family=family)
        except OSError as error:
            raise ServerError(
                f"cannot listen on {host}:{port} ({error.strerror or error}); "
                "pass another --port or --host"
            ) from None
        self.host = host
        self.port = self.socket.getsockname()[1]
        max_message = app.state.limits.max_bytes + WEBSOCKET_OVERHEAD_BYTES
        # Camera frames are JPEG already: compressing them again per message would only cost CPU.
        config = uvicorn.Config(app, log_level="warning", ws_max_size=max_message, ws_per_message_deflate=False,
                                lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def run(self) -> None:
        """Serve until Ctrl-C (uvicorn then re-raises KeyboardInterrupt once it has shut down)."""
        with self.socket:
            self._server.run(sockets=[self.socket])

    def start(self) -> WebServer:
        """Serve from a daemon thread; returns once the server answers."""
        self._thread = threading.Thread(target=self.run, name="digitrec-web", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ServerError(f"the web server at {self.url} did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Ask the threaded server to finish its requests and stop; wait for it."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=STARTUP_TIMEOUT_S)

    def __enter__(self) -> WebServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
