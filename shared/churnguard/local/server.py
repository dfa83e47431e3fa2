"""The API on this machine (``churn serve``, ``churn demo``): uvicorn in a thread, the prediction log
flushed while it serves and when it stops.

    server = ApiServer(app, "127.0.0.1", 8000, prediction_log=log).start()
    ...                       # requests to server.url
    server.stop()             # uvicorn shut down, the last predictions written

The hosted API is the same FastAPI app behind Mangum; Lambda's buffered log is flushed by the
requests themselves. A local server may sit idle with records in its buffer, so a thread sends
them once they are due (``max_age_s`` old).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from churnguard.services.ports import PredictionLogSink


class ApiServer:
    def __init__(
        self,
        app: Any,
        host: str,
        port: int,
        prediction_log: PredictionLogSink | None = None,
        flush_every_s: float = 1.0,
    ) -> None:
        self.app, self.host, self.port = app, host, port
        self.prediction_log = prediction_log
        self.flush_every_s = flush_every_s
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout_s: float = 20.0) -> ApiServer:
        import uvicorn

        self._server = uvicorn.Server(uvicorn.Config(self.app, host=self.host, port=self.port, log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, name="uvicorn", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the API server could not start on {self.host}:{self.port}")
            time.sleep(0.05)
        if self.prediction_log is not None:
            threading.Thread(target=self._flush_when_due, name="prediction-log", daemon=True).start()
        return self

    def _flush_when_due(self) -> None:
        log = self.prediction_log
        while not self._stopping.wait(self.flush_every_s):
            due = getattr(log, "due", None)
            if log is not None and (due is None or due()):
                log.flush()

    @property
    def running(self) -> bool:
        return bool(self._server and self._server.started and not self._server.should_exit)

    def serve_until_stopped(self) -> None:
        """Block until Ctrl-C or SIGTERM (or the server ends), then stop cleanly."""
        try:
            with sigterm_as_interrupt():
                while self.running:
                    time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.prediction_log is not None:
            self.prediction_log.flush()


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (``kill PID``) stops a local server as Ctrl-C does, through its clean-up, not mid-write."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
