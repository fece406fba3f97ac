"""Lifespan: resources opened once per process, before the first join, and closed after the
last response.

In any module under ``actions/``::

    from core import State, lifespan

    @lifespan
    async def http(state: State) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as session:
            state.http = session  # what the actions read as ctx.state.http
            yield

Each function is discovered like the actions (`discover_lifespans`), entered in the order of
their files (then of their definitions), and closed in reverse. `open_lifespans` runs them:
a failure while opening raises `LifespanError` (start-up stops: one line, exit code 1); a
failure while closing is logged in one line and the others still close.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any, Final

from core.execution.context import State
from core.redaction import redact_url, truncate

logger = logging.getLogger(__name__)

# The attribute `lifespan` sets on a function, and discovery looks for.
MARK: Final = "__plugboard_lifespan__"

Lifespan = Callable[[State], AsyncIterator[None]]


class LifespanError(Exception):
    """A lifespan function failed while opening its resources: start-up must stop."""


def lifespan(function: Lifespan) -> Lifespan:
    """Mark `function` (``async def f(state): ...; yield; ...``) as a lifespan function.

    The code before its ``yield`` runs once at start-up, before the service joins the hub,
    and puts what the actions need on `state` (`Context.state`); the code after it runs once
    the last response was delivered at shutdown. Use ``try``/``finally`` or ``async with``
    around the ``yield`` so that closing runs.
    """
    if not inspect.isasyncgenfunction(function):
        raise TypeError(
            f"@lifespan needs an async generator function (async def with one yield); "
            f"{getattr(function, '__qualname__', function)!r} is not"
        )
    setattr(function, MARK, True)
    return function


def is_lifespan(value: Any) -> bool:
    """True for a function marked with `@lifespan`."""
    return inspect.isfunction(value) and getattr(value, MARK, False) is True


def discover_lifespans(path: str | Path) -> list[Lifespan]:
    """The `@lifespan` functions defined in the modules under `path`, in file order.

    Raises `core.model.registry.DiscoveryError` when a module fails to import.
    """
    from core.model.registry import import_modules

    found: list[Lifespan] = []
    for module in import_modules(path):
        found.extend(
            value
            for value in vars(module).values()
            if is_lifespan(value) and value.__module__ == module.__name__
        )
    return found


def describe(function: Lifespan) -> str:
    """``module.function``: how a lifespan function is named in messages."""
    return f"{function.__module__}.{function.__qualname__}"


@contextlib.asynccontextmanager
async def open_lifespans(functions: Iterable[Lifespan], state: State) -> AsyncIterator[State]:
    """Open every lifespan function's resources into `state`, yield it, then close them.

    A function that raises before its ``yield`` (or never yields) closes the ones already
    open and raises `LifespanError` naming it. One that raises while closing is logged
    (one line; the traceback at DEBUG) and the others close all the same.
    """
    async with contextlib.AsyncExitStack() as stack:
        for function in functions:
            name = describe(function)
            manager = contextlib.asynccontextmanager(function)(state)
            try:
                await manager.__aenter__()
            except Exception as error:
                logger.debug("lifespan %s failed while opening", name, exc_info=True)
                raise LifespanError(
                    f"lifespan {name} failed at start-up: {_reason(error)}"
                ) from error
            stack.push_async_exit(_closing(name, manager))
        yield state


def _closing(name: str, manager: contextlib.AbstractAsyncContextManager[None]) -> Any:
    """The exit callback of one opened lifespan: close it, logging a failure in one line."""

    async def close(exc_type: Any, exc: Any, traceback: Any) -> bool:
        try:
            return bool(await manager.__aexit__(exc_type, exc, traceback))
        except Exception as error:
            if error is exc:
                raise  # the body's own error, passed through: not a closing failure
            logger.error("lifespan %s failed while closing: %s", name, _reason(error))
            logger.debug("lifespan %s failed while closing", name, exc_info=True)
            return False

    return close


def _reason(error: BaseException) -> str:
    """``Type: message`` in one line, without URL passwords or tokens."""
    text = " ".join(str(error).split())
    return truncate(redact_url(f"{type(error).__name__}: {text}" if text else type(error).__name__))
