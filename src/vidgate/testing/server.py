"""Serve an ASGI app on a real loopback port, in a background thread.

Used by tests, benchmarks and ``vidgate fake-upstream``: real sockets, so that
timeouts, streaming and callbacks behave as they do in production.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serve_in_thread(app: Any, *, port: int | None = None, also_ports: tuple[int, ...] = ()) -> Iterator[str]:
    """Run ``app`` with uvicorn on 127.0.0.1 until the block ends; yields the base URL.

    ``also_ports``: further ports the same server (one app, one lifespan) listens on.
    """
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="auto")
    server = uvicorn.Server(config)
    sockets = None
    if also_ports:
        sockets = [uvicorn.Config(app, host="127.0.0.1", port=p).bind_socket() for p in (port, *also_ports)]
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": sockets}, name=f"uvicorn:{port}", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"server on port {port} did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
