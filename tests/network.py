"""Whether the network tests can reach PyPI (the one registry the kit fetches from)."""
from __future__ import annotations

import socket


def pypi_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
        return True
    except OSError:
        return False
