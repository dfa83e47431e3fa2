"""Can a local server listen on HOST:PORT? Asked before anything slow starts (``make demo`` asks it
before even building the virtualenv), so a busy port costs a second, not a training run.

Standard library only: the Makefile runs this file with the system Python before ``.venv`` exists.

    python3 shared/churnguard/local/ports.py 127.0.0.1 8000 'make demo PORT={}'   # exit 0, or 2 and the fix
    port_problem("127.0.0.1", 8000)                          # None, or that line
"""

from __future__ import annotations

import errno
import socket
import sys


def port_problem(host: str, port: int, how_to_change: str = "--port {}") -> str | None:
    """Why a server could not listen on ``host:port``, with the fix; None when it can. ``how_to_change``
    says how to pick another port, ``{}`` standing for it (``make demo PORT={}`` from the Makefile).

    Binds the way uvicorn does (SO_REUSEADDR, so a port left in TIME_WAIT counts as free and one
    with a listener does not), then lets go at once.
    """
    if not 0 < port < 65536:
        return f"port {port} is not a TCP port: give one from 1 to 65535 ({how_to_change.format(8123)})"
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return f"host {host!r} is not an address of this machine: use 127.0.0.1 (or 0.0.0.0 for every interface)"
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(address)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return (
                    f"port {port} on {host} is already in use: choose another ({how_to_change.format(8123)}), "
                    f"or stop what listens there (`ss -ltnp 'sport = :{port}'` shows it)"
                )
            if e.errno == errno.EACCES:
                return (
                    f"port {port} needs more privileges than this user has: "
                    f"choose one above 1023 ({how_to_change.format(8123)})"
                )
            if e.errno == errno.EADDRNOTAVAIL:
                return f"{host} is not an address of this machine: use 127.0.0.1 (or 0.0.0.0 for every interface)"
            return f"cannot listen on {host}:{port}: {e.strerror or e}"
    return None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now (the OS picks it)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


if __name__ == "__main__":  # python3 ports.py HOST PORT [HOW_TO_CHANGE]
    if len(sys.argv) < 3 or not sys.argv[2].isdigit():
        print("usage: ports.py HOST PORT [HOW_TO_CHANGE]", file=sys.stderr)
        sys.exit(2)
    problem = port_problem(sys.argv[1], int(sys.argv[2]), *(sys.argv[3:4] or ["--port {}"]))
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        sys.exit(2)
