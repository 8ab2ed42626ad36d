"""Schedule directories over a process pool and the cache, keeping the serial output order.

Parsing YAML in pure Python is CPU-bound, so threads would not help; processes do. Work is
shipped in chunks of whole directories (cross-file rules need a directory together) of about
CHUNK_FILES files, so one task amortises the inter-process round trip. The pool is started
only once a full chunk of uncached work exists: a pre-commit run on a handful of files never
pays for forking. Results come back as compact tuples (the cache's encoding) and are yielded
strictly in discovery order, with a bounded number of chunks in flight so memory stays flat
on any tree size.

Imports inside functions (`concurrent.futures`, `multiprocessing`) are deferred for start-up
time: a run that never takes that path never pays for them.
"""

from __future__ import annotations

import os
from collections import deque

from auditor.core.model import finding_identity as identity
from auditor.run import cache as cache_mod
from auditor.setup import resolve

CHUNK_FILES = 48
IN_FLIGHT_PER_JOB = 4

_ENGINE = None  # the worker's engine (inherited on fork, built by _init otherwise)


def default_jobs() -> int:
    return os.cpu_count() or 1


def _init(engine_class, options) -> None:
    """The engine's class comes from the caller, so this module never imports engine.py
    (which imports this one to schedule directories)."""
    global _ENGINE
    if _ENGINE is None or _ENGINE.options != options:
        _ENGINE = engine_class(options)


def _run_chunk(chunk) -> list:
    """chunk: [(directory, paths, blobs)] -> [(encoded findings, linked files' digests) per
    directory]. A directory's links are followed inside the worker, so a setup spanning
    directories is checked whole wherever its linking file is scheduled."""
    out = []
    for d, paths, blobs in chunk:
        rows = cache_mod.encode(_ENGINE.check_directory(d, paths, blobs))
        out.append((rows, cache_mod.linked_digests(_ENGINE.deps)))
    return out


def _context():
    # fork shares the parent's already-built engine and imported modules (cheap start);
    # elsewhere the initializer rebuilds the engine from the options.
    import multiprocessing

    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods and os.name == "posix" else None)


class _Slot:
    """One directory's place in the output: its findings, or its position in a submitted chunk."""

    __slots__ = ("findings", "future", "index", "key")

    def __init__(self, findings=None, future=None, index=0, key=None):
        self.findings = findings
        self.future = future
        self.index = index
        self.key = key


def check_paths(engine, paths, jobs: int, cache=None):
    """Findings in serial order. A setup can span directories (auditor/setup/graph.py), so two
    workers may report the same finding on a linked file: it is yielded once, as serially."""
    seen = set()
    for f in _check_paths(engine, paths, jobs, cache):
        ident = identity(f)
        if ident not in seen:
            seen.add(ident)
            yield f


def _check_paths(engine, paths, jobs: int, cache=None):
    global _ENGINE
    jobs = max(1, int(jobs or 1))
    max_size = engine.options.max_file_size
    slots: deque = deque()
    chunk: list = []
    chunk_slots: list = []
    chunk_files = 0
    pool = None

    def submit():
        nonlocal pool, chunk, chunk_slots, chunk_files
        if not chunk:
            return
        if pool is None and jobs > 1 and chunk_files >= CHUNK_FILES:
            global _ENGINE
            from concurrent.futures import ProcessPoolExecutor

            _ENGINE = engine
            pool = ProcessPoolExecutor(max_workers=jobs, mp_context=_context(),
                                       initializer=_init, initargs=(type(engine), engine.options))
        if pool is not None:
            engine.files_checked += chunk_files  # counted here: the workers' engines are not ours
            future = pool.submit(_run_chunk, chunk)
            for i, slot in enumerate(chunk_slots):
                slot.future, slot.index = future, i
        else:  # too little work to be worth a pool: do it here
            for slot, (d, ps, bs) in zip(chunk_slots, chunk):
                slot.findings = engine.check_directory(d, ps, bs)
                if slot.key is not None:
                    cache.put(slot.key, cache_mod.encode(slot.findings), cache_mod.linked_digests(engine.deps))
        chunk, chunk_slots, chunk_files = [], [], 0

    def drain(limit: int):
        """Yield finished directories from the front, waiting while too many are pending."""
        while slots:
            slot = slots[0]
            if slot.findings is None and slot.future is None:
                break  # still in the open chunk
            if slot.future is not None and not slot.future.done() and len(slots) <= limit:
                break
            slots.popleft()
            if slot.future is not None:
                rows, deps = slot.future.result()[slot.index]
                if slot.key is not None:
                    cache.put(slot.key, rows, deps)
                yield from cache_mod.decode(rows)
            else:
                yield from slot.findings

    try:
        for directory, group in resolve.by_directory(paths):
            blobs, key = None, None
            if cache is not None:
                blobs, cacheable = cache.read_blobs(group, max_size)
                if cacheable:
                    key = cache.key(directory, group, blobs)
                    hit = cache.get(key)
                    if hit is not None:
                        engine.files_checked += len(group)
                        slots.append(_Slot(findings=hit))
                        yield from drain(jobs * IN_FLIGHT_PER_JOB * CHUNK_FILES)
                        continue
            slot = _Slot(key=key)
            slots.append(slot)
            chunk.append((directory, group, blobs))
            chunk_slots.append(slot)
            chunk_files += len(group)
            if chunk_files >= CHUNK_FILES:
                submit()
            yield from drain(jobs * IN_FLIGHT_PER_JOB * CHUNK_FILES)
        submit()
        yield from drain(0)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        _ENGINE = None

