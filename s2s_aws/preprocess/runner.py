"""Running the chunk tasks: inline with one worker, else in a :class:`concurrent.futures.ProcessPoolExecutor`
whose workers keep state between tasks (see :mod:`.work`); results come back in submission order."""
from __future__ import annotations

import collections
import multiprocessing
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, Callable, Iterable, Iterator, Optional

from . import work

__all__: list[str] = []


def _init_worker(barrier: Any) -> None:
    """A worker process's initializer: fresh state, and memory kept for reuse."""
    work._reset_state(barrier)
    _keep_freed_memory()


def _keep_freed_memory() -> None:
    """In a worker process: let glibc's malloc reuse freed memory instead of returning it to the system.

    Every chunk allocates the same few dozen numpy arrays of a few MiB; by default each one is a fresh
    ``mmap`` whose pages fault in again (about 20 % of the CPU time went to the kernel). Keeping freed
    blocks on the heap makes later chunks reuse them. Memory stays bounded by one chunk's working set.
    Does nothing where there is no glibc ``mallopt``.
    """
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):  # pragma: no cover - not glibc
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    mallopt(m_mmap_threshold, 32 << 20)   # blocks up to 32 MiB come from the heap (the glibc maximum)
    mallopt(m_trim_threshold, 256 << 20)  # and freed ones stay there for reuse


class _Runner:
    """Runs tasks inline (one worker) or in a process pool, yielding results in submission order.

    A broadcast task runs once on every worker: each one waits on a barrier shared by all the workers,
    so no worker can take two. The pool is filled at once (a first broadcast) so that every worker
    exists before the others wait for it.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: Optional[ProcessPoolExecutor] = None
        self._barrier: Any = None
        if workers > 1:
            # fork is cheap, but only safe while this process has no other threads
            method = "fork" if "fork" in multiprocessing.get_all_start_methods() \
                and threading.active_count() == 1 else "spawn"
            ctx = multiprocessing.get_context(method)
            self._barrier = ctx.Barrier(workers)
            self._pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                             initargs=(self._barrier,))
            self.broadcast(work._after_broadcast)
        else:
            work._reset_state(None)

    def map(self, fn: Callable, tasks: Iterable[tuple]) -> Iterator:
        """``fn(*args)`` for every task, in order; at most ``2 * workers`` tasks in flight."""
        if self._pool is None:
            for args in tasks:
                yield fn(*args)
            return
        window: collections.deque[Future] = collections.deque()
        for args in tasks:
            window.append(self._pool.submit(fn, *args))
            if len(window) >= 2 * self.workers:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()

    def broadcast(self, fn: Callable, *args: Any) -> list:
        """Run ``fn(*args)`` once on every worker (they must all be idle); return the results."""
        if self._pool is None:
            return [fn(*args)]
        pending = [self._pool.submit(fn, *args) for _ in range(self.workers)]
        return [p.result() for p in pending]

    def close(self, *, ok: bool) -> None:
        """Stop the workers; after a failure, without running the tasks still queued."""
        if self._pool is None:
            work._reset_state(None)
            return
        if not ok:
            self._barrier.abort()  # a worker waiting in a broadcast stops waiting
        self._pool.shutdown(wait=True, cancel_futures=not ok)
        self._pool = None
