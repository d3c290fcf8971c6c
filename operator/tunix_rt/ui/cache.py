"""Parsed store files, kept while the file is unchanged (its stamp: mtime and inode,
ETag or generation, and size; :meth:`~tunix_rt.storage.Store.entries`).

Listing 200 finished sweeps would parse 200 summaries of 20 trials each on every view;
with this, a view lists folders and parses only what was rewritten since the last one.
A stamp that cannot be told (None) is never cached.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar, cast

T = TypeVar("T")

DEFAULT_LIMIT = 20_000
"""Entries kept (least recently used first out): 200 sweeps of 20 trials twice over."""


class StampCache:
    """A least-recently-used map of store key -> (stamp, parsed value), thread-safe (the
    app reads the store in worker threads)."""

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self.limit = limit
        self._items: OrderedDict[tuple[str, str], tuple[str, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, kind: str, key: str, stamp: str | None, load: Callable[[], T]) -> T:
        """The value ``load`` made from ``key`` at this ``stamp`` (``kind``: what was made
        of it, so one file may be cached as a model and as a page row)."""
        if stamp is None:
            return load()
        slot = (kind, key)
        with self._lock:
            held = self._items.get(slot)
            if held is not None and held[0] == stamp:
                self._items.move_to_end(slot)
                self.hits += 1
                return cast(T, held[1])
        value = load()
        with self._lock:
            self.misses += 1
            self._items[slot] = (stamp, value)
            self._items.move_to_end(slot)
            while len(self._items) > self.limit:
                self._items.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._items)
