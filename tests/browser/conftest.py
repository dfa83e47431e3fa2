"""The browser tier: `make demo` as a person runs it, and Debian's Chromium (headless) driven by Playwright.

The demo runs as a subprocess on free ports (stopped by PID at the end); its console URL is read from
what it prints. Playwright drives /usr/bin/chromium: no browser is downloaded (`make chromium`
installs Debian's package when missing). Each test writes a screenshot of its page under
tests/artifacts/ (gitignored).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from churnguard.local.emulator import free_port
from tests.conftest import ROOT

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# The flags the project runs Chromium with: headless, no sandbox (root in CI), nothing fetched from the network.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
ARTIFACTS = ROOT / "tests" / "artifacts"
LAPTOP = {"width": 1366, "height": 768}
DEMO_TIMEOUT_S = 900


def _two_free_ports() -> int:
    """A port P with P + 1 free too (the demo serves its console on the API's port + 1)."""
    import socket

    for _ in range(50):
        port = free_port()
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two adjacent free ports")


@pytest.fixture(scope="session")
def demo() -> Iterator[dict[str, Any]]:
    """`churn demo` (the command `make demo` runs) with its console; yields the console URL and what it printed."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: run `make chromium` (Debian's chromium package)")
    port = _two_free_ports()
    proc = subprocess.Popen(
        [sys.executable, "-m", "churnguard", "demo", "--rows", "1500", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    found: dict[str, str] = {}
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            m = re.search(r"console: open (http://127\.0\.0\.1:\d+/console)", line)
            if m:
                found["url"] = m.group(1)
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        if not ready.wait(DEMO_TIMEOUT_S) or "url" not in found:
            pytest.fail("the demo printed no console URL:\n" + "".join(lines[-40:]))
        yield {"url": found["url"], "api": f"http://127.0.0.1:{port}", "output": lines}
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # the demo's own process group: it stops its emulator on Ctrl-C
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, tmp_path: Path) -> Iterator[Any]:
    context = browser.new_context(viewport=LAPTOP, accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    yield pg
    context.close()


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"console-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def fits_laptop_width(page: Any) -> bool:
    """No horizontal scrolling of the page itself at a laptop's width (wide tables scroll in their own box)."""
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))
