"""The Lambda execution environment's shutdown, as the predict function sees it.

Lambda reaps an idle execution environment without warning unless an extension is registered:
then it sends the runtime SIGTERM and allows it about 500 ms (with an internal extension) before
SIGKILL. ``register_shutdown_extension`` registers a no-op internal extension through the
Extensions API (subscribed to no event; a thread waits on ``event/next``, as Lambda requires of
every extension), and ``on_shutdown`` runs a callback on SIGTERM, then exits. See
https://github.com/aws-samples/graceful-shutdown-with-aws-lambda (Python 3.12 runtimes on).

    register_shutdown_extension(os.environ["AWS_LAMBDA_RUNTIME_API"], "churnguard-shutdown")
    on_shutdown(lambda: prediction_log.close(0.3))
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import urllib.request
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)
EXTENSIONS_API = "2020-01-01/extension"


def register_shutdown_extension(runtime_api: str, name: str, timeout_s: float = 2.0) -> bool:
    """Register a no-op internal extension so that Lambda signals this process before reaping it.

    Best effort: False (logged) when the Extensions API does not answer; the function serves anyway.
    """
    request = urllib.request.Request(
        f"http://{runtime_api}/{EXTENSIONS_API}/register",
        data=json.dumps({"events": []}).encode(),
        headers={"Lambda-Extension-Name": name, "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            extension_id = response.headers["Lambda-Extension-Identifier"]
    except (OSError, ValueError) as e:
        log.warning("no shutdown extension (buffered prediction-log records may be lost on reaping): %s", e)
        return False
    if not extension_id:
        log.warning("no shutdown extension: the Extensions API gave no identifier")
        return False
    threading.Thread(
        target=_wait_for_events, args=(runtime_api, extension_id), name=f"extension-{name}", daemon=True
    ).start()
    return True


def _wait_for_events(runtime_api: str, extension_id: str) -> None:
    """Ask for the next event, as every extension must to end the init phase."""
    request = urllib.request.Request(
        f"http://{runtime_api}/{EXTENSIONS_API}/event/next", headers={"Lambda-Extension-Identifier": extension_id}
    )
    # Subscribed to no event, the request should never return; if it does (a connection broken by a
    # SnapStart restore, say) it is made again, a few times at most.
    for _ in range(3):
        try:
            with urllib.request.urlopen(request, timeout=None) as response:
                response.read()
        except OSError as e:
            log.warning("shutdown extension: event/next failed: %s", e)


def on_shutdown(callback: Callable[[], Any]) -> bool:
    """Run ``callback`` when the process gets SIGTERM (Lambda's shutdown), then exit at once.

    The callback must be quick (Lambda kills the runtime about 500 ms after the signal) and never
    raise; the exit happens whatever it does. Python takes signal handlers from the main thread only
    (Lambda's runtime imports the handler module there): elsewhere nothing is installed and False
    is returned (logged), rather than failing the function's import.
    """

    def handle(signum: int, frame: Any) -> None:
        try:
            callback()
        except Exception:  # noqa: BLE001 - the process is going away: say so and go
            log.exception("shutdown callback failed")
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)

    try:
        signal.signal(signal.SIGTERM, handle)
    except ValueError as e:  # not the main thread
        log.warning("no shutdown hook (buffered prediction-log records may be lost on reaping): %s", e)
        return False
    return True
