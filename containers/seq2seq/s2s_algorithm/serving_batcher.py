"""Dynamic batching for the inference server: many requests, one decode call.

Each model copy (one per device) is a :class:`ModelRunner` that owns a single worker thread, so the
model is only ever called from that thread and the asyncio event loop never blocks on it.
:class:`DynamicBatcher` queues the sentences of concurrent requests; when a model copy is free it
waits a short window (``S2S_BATCH_WINDOW_MS``) after the oldest queued sentence for more to arrive,
then decodes up to ``S2S_MAX_BATCH_SIZE`` sentences, from any number of requests, in one call and
routes each result back to its request.

Scheduling is fair between requests, not first come first served: half of each batch (the fair
lane) is shared among the queued requests by max-min fairness (every request gets an equal share; a
request that needs less leaves the rest to the others), the other half (the oldest lane) goes to the
oldest requests first, and the queue turns after each batch. A large request is therefore decoded
in slices interleaved with the other requests' work: a one-sentence request that arrives while a
100,000-sentence request is decoding is in the next batch, and the large request keeps at least
half of the model however many small requests arrive (see :meth:`DynamicBatcher._take_batch`).
(With dynamic batching off, a request takes the model for one slice of ``S2S_MAX_BATCH_SIZE``
sentences at a time, queueing again after each.) The
window is at most :data:`WINDOW_FRACTION` of the recent decode-call time (waiting longer than a
fraction of a decode costs more latency than merging saves), and it is skipped while there is no
concurrency to wait for: one request queued and the previous decode call served one request alone
(a lone client pays no window; requests that queue while a call runs are merged anyway, and the next
call after a merged one waits again).

A batch that runs out of device memory is split in halves and retried (down to one sentence). A
batch that fails for any other reason is retried request by request, so a faulty request fails
alone and its neighbours in the batch still get their answers.
"""
from __future__ import annotations

import asyncio
import logging
import sys
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Sequence

from s2s_aws.contract.inference import Item, TranslationResult
from s2s_aws.contract.layout import UNK, UNK_ID
from s2s_aws.contract.vocab import id_to_token

logger = logging.getLogger(__name__)

__all__ = ["ModelRunner", "DynamicBatcher", "is_out_of_memory", "WINDOW_FRACTION", "OLDEST_FRACTION"]

#: the batching window is at most this fraction of the recent decode-call time (moving average)
WINDOW_FRACTION = 0.4
#: this fraction of every batch goes to the oldest queued requests first (the rest is shared fairly)
OLDEST_FRACTION = 0.5


def is_out_of_memory(exc: BaseException) -> bool:
    """True for ``torch.cuda.OutOfMemoryError`` and the "out of memory" RuntimeErrors of other backends."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def _release_cached_memory() -> None:
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


class ModelRunner:
    """One model copy (a :class:`~s2s_algorithm.translator.Translator`) and its one worker thread.

    ``run`` is synchronous and must be called in :attr:`executor`; it decodes text and id items
    (empty sources need no model call: their translation is empty), at most ``max_batch_size``
    sentences per model call, splitting a batch that runs out of memory.
    """

    def __init__(self, translator: Any, *, name: str = "model", max_batch_size: int = 64,
                 beam_size: int | None = None):
        self.translator = translator
        self.name = name
        self.max_batch_size = max(1, int(max_batch_size))
        self.beam_size = beam_size
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"s2s-{name}")
        self._itos = id_to_token(translator.trg_vocab)
        self._trg_vocab = translator.trg_vocab
        self.oom_splits = 0  # how many times a batch was split after running out of memory

    # -- public --------------------------------------------------------------------------------
    def run(self, items: Sequence[Item]) -> list[TranslationResult]:
        """Translate ``items`` (any mix of kinds); one result per item, same order."""
        results: list[TranslationResult | None] = [None] * len(items)
        for kind in ("text", "ids"):
            idx = [i for i, it in enumerate(items) if it.kind == kind and it.tokens > 0]
            for start in range(0, len(idx), self.max_batch_size):
                chunk = idx[start:start + self.max_batch_size]
                out = self._run_split([items[i] for i in chunk])
                for i, r in zip(chunk, out):
                    results[i] = r
        for i, it in enumerate(items):
            if results[i] is None:  # no tokens ("" or whitespace): empty translation, no model call
                results[i] = TranslationResult(target="", matrix=[] if it.attention else None, ids=[], tokens=[])
        return results  # type: ignore[return-value]

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)

    # -- internals -----------------------------------------------------------------------------
    def _run_split(self, items: list[Item]) -> list[TranslationResult]:
        try:
            return self._call(items)
        except Exception as e:
            if not is_out_of_memory(e) or len(items) == 1:
                raise
            self.oom_splits += 1
            half = len(items) // 2
            logger.warning("%s: out of memory on a batch of %d sentences; retrying as %d + %d",
                           self.name, len(items), half, len(items) - half)
            del e
            _release_cached_memory()
            return self._run_split(items[:half]) + self._run_split(items[half:])

    def _call(self, items: list[Item]) -> list[TranslationResult]:
        attention = any(it.attention for it in items)
        if items[0].kind == "text":
            outs = self.translator.translate([it.source for it in items], beam_size=self.beam_size,
                                             attention=attention)
            return [self._from_text(it, o) for it, o in zip(items, _checked(outs, items))]
        outs = self.translator.translate_ids([list(it.source) for it in items], beam_size=self.beam_size,
                                             attention=attention)
        return [self._from_ids(it, o) for it, o in zip(items, _checked(outs, items))]

    def _from_text(self, item: Item, out: Any) -> TranslationResult:
        tokens = list(out.tokens)
        ids = [self._trg_vocab.get(t, UNK_ID) for t in tokens]
        matrix = [list(map(float, row)) for row in out.matrix] if item.attention and out.matrix is not None else None
        return TranslationResult(target=out.target, matrix=matrix, ids=ids, tokens=tokens)

    def _from_ids(self, item: Item, out: Any) -> TranslationResult:
        ids = [int(t) for t in out.ids]
        tokens = [self._itos[t] if 0 <= t < len(self._itos) else UNK for t in ids]
        matrix = None
        if item.attention and out.attention is not None:
            matrix = [[float(x) for x in row] for row in out.attention.tolist()]
        return TranslationResult(target=" ".join(tokens), matrix=matrix, ids=ids, tokens=tokens)


def _checked(outs: Sequence[Any], items: Sequence[Item]) -> Sequence[Any]:
    if len(outs) != len(items):
        raise RuntimeError(f"the translator returned {len(outs)} translations for {len(items)} sentences")
    return outs


@dataclass(eq=False)
class _Job:
    """One request's sentences on their way through the queue."""

    items: list[Item]
    future: asyncio.Future
    arrived: float
    results: list[TranslationResult | None] = field(default_factory=list)
    next_index: int = 0
    done_count: int = 0

    def __post_init__(self) -> None:
        self.results = [None] * len(self.items)

    @property
    def remaining(self) -> int:
        return len(self.items) - self.next_index

    def finish(self, exc: BaseException | None = None) -> None:
        if self.future.done():
            return
        if exc is not None:
            self.future.set_exception(exc)
        elif self.done_count == len(self.items):
            self.future.set_result(self.results)


# a batch: (job, start, stop) slices of several jobs
_Batch = list[tuple[_Job, int, int]]


class DynamicBatcher:
    """Merges the sentences of concurrent requests into shared decode calls.

    Use from one event loop: ``await start()``, then ``await submit(items)`` from request handlers,
    ``await stop()`` at shutdown (waits for queued and running work to finish). With
    ``enabled=False`` each request is decoded on its own (still on the model's worker thread).
    """

    def __init__(self, runners: Sequence[ModelRunner], *, max_batch_size: int = 64,
                 window_s: float = 0.005, enabled: bool = True):
        if not runners:
            raise ValueError("DynamicBatcher needs at least one ModelRunner")
        self.runners = list(runners)
        self.max_batch_size = max(1, int(max_batch_size))
        self.window_s = max(0.0, float(window_s))
        self.enabled = enabled
        self.batches_run = 0          # decode calls made (for tests and logs)
        self.largest_batch = 0
        self.windows_waited = 0       # decode calls that first waited for the window
        self._last_jobs = 1           # requests served by the previous decode call
        self._decode_s: float | None = None   # moving average of decode-call time
        self._pending: deque[_Job] = deque()
        self._idle: asyncio.Queue[ModelRunner] | None = None
        self._wakeup: asyncio.Event | None = None
        self._loop_task: asyncio.Task | None = None
        self._running: set[asyncio.Task] = set()

    @property
    def window(self) -> float:
        """The batching window now, in seconds: ``window_s``, at most a fraction of recent decodes."""
        if self._decode_s is None:
            return self.window_s
        return min(self.window_s, WINDOW_FRACTION * self._decode_s)

    @property
    def queued_sentences(self) -> int:
        return sum(j.remaining for j in self._pending if not j.future.done())

    async def start(self) -> None:
        self._idle = asyncio.Queue()
        for r in self.runners:
            self._idle.put_nowait(r)
        self._wakeup = asyncio.Event()
        if self.enabled:
            self._loop_task = asyncio.create_task(self._batch_loop(), name="s2s-batcher")

    async def submit(self, items: list[Item]) -> list[TranslationResult]:
        """Translate one request's items; results in the same order."""
        if self._idle is None:
            raise RuntimeError("DynamicBatcher.start() was not awaited")
        if not items:
            return []
        loop = asyncio.get_running_loop()
        if not self.enabled:
            return await self._submit_alone(items)
        job = _Job(items=list(items), future=loop.create_future(), arrived=loop.time())
        self._pending.append(job)
        self._wakeup.set()
        return await job.future

    async def stop(self, timeout: float = 60.0) -> None:
        """Finish queued and running work (up to ``timeout`` seconds), then stop the worker threads."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (self._live_pending() or self._running) and loop.time() < deadline:
            await asyncio.sleep(0.01)
        if self._loop_task is not None:
            self._loop_task.cancel()
            try:
                await self._loop_task
            except asyncio.CancelledError:
                pass
        for job in self._pending:
            job.finish(RuntimeError("the server shut down before this request was decoded"))
        for r in self.runners:
            r.close()

    # -- internals -----------------------------------------------------------------------------
    async def _submit_alone(self, items: list[Item]) -> list[TranslationResult]:
        """No batching: the request's own decode calls, one slice of ``max_batch_size`` at a time,
        giving the model back between slices so that other requests' slices run in between."""
        assert self._idle is not None
        loop = asyncio.get_running_loop()
        results: list[TranslationResult] = []
        for start in range(0, len(items), self.max_batch_size):
            if start:
                await asyncio.sleep(0)  # let a request already waiting for the model take it first
            runner = await self._idle.get()
            try:
                self.batches_run += 1
                results += await loop.run_in_executor(runner.executor, runner.run,
                                                      items[start:start + self.max_batch_size])
            finally:
                self._idle.put_nowait(runner)
        return results

    def _live_pending(self) -> bool:
        while self._pending and self._pending[0].future.done():  # cancelled (timeout, disconnect)
            self._pending.popleft()
        return bool(self._pending)

    async def _batch_loop(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._idle is not None and self._wakeup is not None
        while True:
            runner = await self._idle.get()
            while not self._live_pending():
                self._wakeup.clear()
                await self._wakeup.wait()
            # wait for more sentences: until the window after the oldest job closes or a batch is full
            # (unless no concurrency was seen: one job queued after a call that served one job)
            deadline = min(j.arrived for j in self._pending) + self.window
            concurrent = len(self._pending) > 1 or self._last_jobs > 1
            if concurrent and self.window > 0 and self.queued_sentences < self.max_batch_size:
                self.windows_waited += 1
            while concurrent and self.queued_sentences < self.max_batch_size:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), remaining)
                except asyncio.TimeoutError:
                    break
            batch = self._take_batch()
            if not batch:
                self._idle.put_nowait(runner)
                continue
            self._last_jobs = len({id(job) for job, _, _ in batch})
            task = asyncio.create_task(self._run_batch(runner, batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    def _take_batch(self) -> _Batch:
        """The next batch: up to ``max_batch_size`` sentences, in two lanes.

        The fair lane (``1 - OLDEST_FRACTION`` of the batch) is shared by max-min fairness: each open
        request gets an equal share of the room left (in queue order), a request that needs less
        leaves the rest, and the leftovers go to the requests closest to done first, until the lane
        is full or every request is served; so a small request is in the next batch. The oldest lane
        (the rest, and whatever the fair lane left) goes to the oldest requests first, so a large
        request keeps at least that fraction of the model and finishes in a time set by its own size,
        however many small requests keep arriving (with the fair lane alone, 44 clients of small
        requests left a 1,000-sentence request one sentence per batch: 504 after 55 s). Then the
        queue turns: requests that got nothing come first next time, the ones served go to the back."""
        jobs = [j for j in self._pending if not j.future.done()]  # drops timed-out / disconnected ones
        take = [0] * len(jobs)
        fair_room = self.max_batch_size - int(self.max_batch_size * OLDEST_FRACTION)
        room = fair_room
        open_jobs = list(range(len(jobs)))
        first_round = True
        while room > 0 and open_jobs:
            share = max(1, room // len(open_jobs))
            if not first_round:  # leftovers: closest to done first
                open_jobs.sort(key=lambda k: jobs[k].remaining - take[k])
            still_open = []
            for k in open_jobs:
                if room == 0:
                    break
                n = min(share, jobs[k].remaining - take[k], room)
                take[k] += n
                room -= n
                if jobs[k].remaining > take[k]:
                    still_open.append(k)
            open_jobs = still_open
            first_round = False
        room += self.max_batch_size - fair_room
        for k in sorted(range(len(jobs)), key=lambda k: jobs[k].arrived):  # the oldest lane
            if room == 0:
                break
            n = min(jobs[k].remaining - take[k], room)
            take[k] += n
            room -= n
        batch: _Batch = []
        waiting, served = [], []
        for job, n in zip(jobs, take):
            if n:
                batch.append((job, job.next_index, job.next_index + n))
                job.next_index += n
                if job.remaining:
                    served.append(job)
            else:
                waiting.append(job)
        self._pending = deque(waiting + served)
        return batch

    async def _run_batch(self, runner: ModelRunner, batch: _Batch) -> None:
        loop = asyncio.get_running_loop()
        assert self._idle is not None
        try:
            items = [it for job, a, b in batch for it in job.items[a:b]]
            self.batches_run += 1
            self.largest_batch = max(self.largest_batch, len(items))
            logger.debug("%s: decoding %d sentences from %d requests", runner.name, len(items), len(batch))
            try:
                started = loop.time()
                results = await loop.run_in_executor(runner.executor, runner.run, items)
                took = loop.time() - started
                self._decode_s = took if self._decode_s is None else 0.8 * self._decode_s + 0.2 * took
            except Exception as e:
                if len({id(job) for job, _, _ in batch}) == 1:
                    batch[0][0].finish(e)
                    return
                # isolate the failure: decode each request's slice on its own
                for job, a, b in batch:
                    if job.future.done():
                        continue
                    try:
                        part = await loop.run_in_executor(runner.executor, runner.run, job.items[a:b])
                    except Exception as e2:
                        job.finish(e2)
                        continue
                    self._deliver(job, a, part)
                return
            pos = 0
            for job, a, b in batch:
                self._deliver(job, a, results[pos:pos + (b - a)])
                pos += b - a
        except BaseException as e:  # never leave a request hanging
            for job, _, _ in batch:
                job.finish(e if isinstance(e, Exception) else RuntimeError("decoding was cancelled"))
            raise
        finally:
            self._idle.put_nowait(runner)

    @staticmethod
    def _deliver(job: _Job, start: int, part: Sequence[TranslationResult]) -> None:
        job.results[start:start + len(part)] = list(part)
        job.done_count += len(part)
        job.finish()
