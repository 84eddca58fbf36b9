"""Worker processes for a whole full pass: judging on every CPU the publisher may use.

Judging keys is pure Python and holds one CPU.  When the process may run on more
than one (``os.sched_getaffinity``; ``taskset -c 0`` keeps it on one), a full pass
SCANs here and hands the batches of keys to forked workers, each reading its batches
over its own Redis connection (HMGET, HLEN) and judging them on the fast path.  The
results come back in batch order and go into the same :class:`~publisher.sync.FullPass`
as a single-process pass fills, so the diff, the safety check and the one commit are
unchanged: nothing is committed until every batch is in, and a worker's error (Redis
gone, say) is raised here before anything is.  Into an empty store (a first sync) the
batches are written as they come, in the one transaction committed at the end.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections import deque
from multiprocessing.pool import AsyncResult
from typing import TYPE_CHECKING

from publisher.source import RedisSource

if TYPE_CHECKING:
    from publisher.sync import FullPass, ZoneSync
    from zoned.store import Transaction

MAX_WORKERS = 2
# Batches handed out ahead of the one being merged, per worker: enough that no worker
# waits for work, few enough that results do not pile up in memory.
AHEAD = 2

Judged = tuple[dict[bytes, bytes], list[bytes], tuple[int, int, int, int]]

# A worker's zone and its own Redis connection; set by _start in each worker.
_zone: ZoneSync | None = None
_source: RedisSource | None = None


def default_workers() -> int:
    """Worker processes for a full pass: the CPUs this process may use, at most 2.

    One CPU means none: the pass runs in this process.
    """
    cpus = len(os.sched_getaffinity(0))
    return min(cpus, MAX_WORKERS) if cpus > 1 else 0


def _start(sync: ZoneSync) -> None:
    global _zone, _source
    # The publisher's own handlers (SIGTERM: stop the loop gracefully) would keep a
    # worker alive through Pool.terminate(); Ctrl-C is the parent's to handle.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _zone = sync  # inherited through fork; the worker never touches its store
    settings = sync.settings
    _source = RedisSource(settings.urls, settings.prefix, cluster=settings.cluster)


def _judge(keys: list[bytes]) -> Judged:
    """Read and judge one batch in a worker: its entries, its keys left to the general
    path, and its counts (keys, published, excluded, below_min)."""
    from publisher.sync import Stats

    assert _zone is not None and _zone.fast is not None and _source is not None
    values, lengths = _source.fetch_fields(keys, _zone.fast.fields)
    stats = Stats()
    desired: dict[bytes, bytes] = {}
    slow = _zone.fast.judge(keys, values, lengths, stats, desired)
    return desired, slow, (stats.keys, stats.published, stats.excluded, stats.below_min)


def run(full: FullPass, workers: int, txn: Transaction | None = None) -> None:
    """Judge every batch of ``full`` in ``workers`` processes; the caller finishes the pass.

    With ``txn`` (an empty store's transaction), each batch's entries are also put in
    it as they come: the merge is otherwise idle while the workers judge.
    """
    sync = full.sync
    assert sync.fast is not None
    context = multiprocessing.get_context("fork")
    pool = context.Pool(workers, initializer=_start, initargs=(sync,))
    try:
        pending: deque[tuple[int, AsyncResult[Judged]]] = deque()
        for keys in sync.source.scan_keys(sync.batch):
            if keys:
                pending.append((len(keys), pool.apply_async(_judge, (keys,))))
            while len(pending) > AHEAD * workers:
                _merge(full, *pending.popleft(), txn)
        while pending:
            _merge(full, *pending.popleft(), txn)
        pool.close()  # every batch is in: let the workers finish
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()


def _merge(full: FullPass, size: int, result: AsyncResult[Judged], txn: Transaction | None
           ) -> None:
    desired, slow, (keys, published, excluded, below_min) = result.get()
    full.desired.update(desired)
    if txn is not None:
        txn.put_many(list(desired.items()))
    stats = full.stats
    stats.keys += keys
    stats.published += published
    stats.excluded += excluded
    stats.below_min += below_min
    if slow:
        general = full.judge_general(slow)
        if txn is not None:
            txn.put_many(list(general.items()))
    if full.progress is not None:
        full.progress.add(size)
