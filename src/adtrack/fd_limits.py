"""File-descriptor budget of a server process: how many client connections it may hold.

Every open connection costs a file descriptor; so do the store, the event log's segments and
the NATS connection. A process that runs out of descriptors fails in the worst places (an
aggregator that cannot open a file, a listener that resets good clients), so the connection cap
stays below the limit with a reserve for everything else.
"""

from __future__ import annotations

import resource

__all__ = ["FD_RESERVE", "DEFAULT_MAX_CONNECTIONS", "connection_cap", "raise_fd_limit"]

FD_RESERVE = 512  # descriptors kept for the store, the event log, pipes and sockets
DEFAULT_MAX_CONNECTIONS = 10_000


def raise_fd_limit() -> int:
    """Raise this process's soft descriptor limit to its hard limit; the soft limit after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def connection_cap(configured: int) -> int:
    """The connections one process may hold: ``configured`` when set (> 0), else
    ``DEFAULT_MAX_CONNECTIONS``; never more than the descriptor limit less ``FD_RESERVE``."""
    soft = raise_fd_limit()
    wanted = configured if configured > 0 else DEFAULT_MAX_CONNECTIONS
    return max(1, min(wanted, soft - FD_RESERVE))
