"""Overlap file reads and writes with the CPU work between them, one worker thread each way.

zlib, pyarrow's JSON and Parquet readers and the Parquet writer release the GIL, so the next item
can be read and the previous one written while Python works on the current one. Each side keeps
at most one item in flight: memory stays flat whatever the volume.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["WriteBehind", "read_ahead"]

T = TypeVar("T")


def _next_boxed(items: Iterator[T]) -> list[T]:
    """The next item in a one-element list (empty at the end), so the caller can take it out."""
    for item in items:
        return [item]
    return []


def read_ahead(pool: ThreadPoolExecutor, items: Iterator[T]) -> Iterator[T]:
    """``items`` in order, each one produced in ``pool`` while the caller works on the one before.

    Holds no reference to an item it has handed out, so the caller can free it early (``del``).
    """
    upcoming = pool.submit(_next_boxed, items)
    while box := upcoming.result():
        upcoming = pool.submit(_next_boxed, items)
        yield box.pop()


class WriteBehind:
    """Runs writes one at a time in its own worker thread; :meth:`submit` first waits for the
    write before it, so at most one waits. Leaving the block waits for the last one."""

    def __init__(self, thread_name_prefix: str) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name_prefix)
        self._pending: Future[Any] | None = None

    def __enter__(self) -> WriteBehind:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        try:
            if exc_type is None:
                self.wait()
        finally:
            self._pool.shutdown(wait=True)

    def submit(self, write: Callable[..., Any], /, *args: Any) -> None:
        """Start ``write(*args)`` once the previous write is done (raising its error, if any)."""
        self.wait()
        self._pending = self._pool.submit(write, *args)

    def wait(self) -> None:
        """Wait for the write in flight, if any; its exception is raised here."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()
