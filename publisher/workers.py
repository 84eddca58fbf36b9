"""Worker processes for a whole full pass: judging on every CPU the publisher may use.

Judging keys is pure Python and holds one CPU.  When the process may run on more
than one (``os.sched_getaffinity``; ``taskset -c 0`` keeps it on one), a full pass
SCANs here and hands the batches of keys to forked workers, each reading its batches
over its own Redis connection (HMGET, HLEN) and judging them on the fast path, built
from the zone's :class:`~publisher.judge.Judge`: all a worker receives of the sync.
The results come back in batch order and the caller merges them into the same
:class:`~publisher.sync.FullPass` as a single-process pass fills, so the diff, the
safety check and the one commit are unchanged: nothing is committed until every batch
is in, and a worker's error (Redis gone, say) is raised here before anything is.  Into
an empty store (a first sync) the batches are written as they come, in the one
transaction committed at the end."""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Callable, Iterable
from multiprocessing.pool import AsyncResult

from publisher.fastpath import RspamdFastPath
from publisher.judge import Judge, Stats
from publisher.source import RedisSource

MAX_WORKERS = 2
# Batches handed out ahead of the one being merged, per worker: enough that no worker
# waits for work, few enough that results do not pile up in memory.
AHEAD = 2

# One batch judged: its entries, its keys left to the general path, and its counts
# (keys, published, excluded, below_min).
Judged = tuple[dict[bytes, bytes], list[bytes], tuple[int, int, int, int]]
# What the caller does with each batch, in batch order: (its number of keys, judged).
Merge = Callable[[int, Judged], None]

# A worker's fast path and its own Redis connection; set by _start in each worker.
_fast: RspamdFastPath | None = None
_source: RedisSource | None = None


def default_workers() -> int:
    """Worker processes for a full pass: the CPUs this process may use, at most 2.

    One CPU means none: the pass runs in this process.
    """
    cpus = len(os.sched_getaffinity(0))
    return min(cpus, MAX_WORKERS) if cpus > 1 else 0


def _start(judge: Judge) -> None:
    global _fast, _source
    # The publisher's own handlers (SIGTERM: stop the loop gracefully) would keep a
    # worker alive through Pool.terminate(); Ctrl-C is the parent's to handle.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _fast = RspamdFastPath(judge)  # the judge is inherited through fork
    settings = judge.settings
    _source = RedisSource(settings.urls, settings.prefix, cluster=settings.cluster)


def _judge(keys: list[bytes]) -> Judged:
    """Read and judge one batch in a worker."""
    assert _fast is not None and _source is not None
    values, lengths = _source.fetch_fields(keys, _fast.fields)
    stats = Stats()
    desired: dict[bytes, bytes] = {}
    slow = _fast.judge(keys, values, lengths, stats, desired)
    return desired, slow, (stats.keys, stats.published, stats.excluded, stats.below_min)


def run(judge: Judge, batches: Iterable[list[bytes]], workers: int, merge: Merge) -> None:
    """Judge ``batches`` of keys on the fast path in ``workers`` processes.

    Each result is handed to ``merge`` in batch order, in this process; an error in a
    worker is raised here, from the batch it judged.
    """
    context = multiprocessing.get_context("fork")
    pool = context.Pool(workers, initializer=_start, initargs=(judge,))
    try:
        pending: deque[tuple[int, AsyncResult[Judged]]] = deque()
        for keys in batches:
            if keys:
                pending.append((len(keys), pool.apply_async(_judge, (keys,))))
            while len(pending) > AHEAD * workers:
                size, result = pending.popleft()
                merge(size, result.get())
        while pending:
            size, result = pending.popleft()
            merge(size, result.get())
        pool.close()  # every batch is in: let the workers finish
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()
