"""The local NATS JetStream server: per-test stream names, cleaned up with JetStream management."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import nats
from nats.js.errors import NotFoundError

# Override with ADTRACK_TEST_NATS_URL.
NATS_URL = os.environ.get("ADTRACK_TEST_NATS_URL", "nats://127.0.0.1:4222")
STREAM_PREFIX = "ADTRACK_T_"

T = TypeVar("T")


def unique_stream_name() -> str:
    """A stream name no other test (or test run) uses: ``ADTRACK_T_<pid>_<RANDOM>``."""
    return f"{STREAM_PREFIX}{os.getpid()}_{secrets.token_hex(4).upper()}"


async def _connect(url: str) -> nats.NATS:
    try:
        return await nats.connect(url, connect_timeout=5, max_reconnect_attempts=0)
    except Exception as exc:
        raise RuntimeError(
            f"NATS is not answering at {url} ({exc}). "
            "Run `make test` (or scripts/ensure_services.sh) to start it."
        ) from exc


async def _check_jetstream(url: str) -> None:
    nc = await _connect(url)
    try:
        await nc.jetstream().account_info()
    finally:
        await nc.close()


async def _delete_stream(url: str, name: str) -> bool:
    nc = await _connect(url)
    try:
        return await nc.jetstream().delete_stream(name)
    except NotFoundError:
        return False
    finally:
        await nc.close()


async def _stream_exists(url: str, name: str) -> bool:
    nc = await _connect(url)
    try:
        await nc.jetstream().stream_info(name)
        return True
    except NotFoundError:
        return False
    finally:
        await nc.close()


def _run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion, also when called from code already inside an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def check_jetstream(url: str = NATS_URL) -> None:
    """Raise a clear error unless a NATS server with JetStream enabled answers at ``url``."""
    _run_sync(_check_jetstream(url))


def delete_stream(name: str, url: str = NATS_URL) -> bool:
    """Delete stream ``name`` (and its consumers); False when there was no such stream."""
    return _run_sync(_delete_stream(url, name))


def stream_exists(name: str, url: str = NATS_URL) -> bool:
    return _run_sync(_stream_exists(url, name))
