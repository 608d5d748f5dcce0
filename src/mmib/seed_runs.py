"""Seed runs of a training stage: the seed workers report, the stage process logs.

Seeds train in worker processes (:func:`mmib.stages.seed_pool.fit_all_seeds`). Each
would pay for ``import mlflow`` and a store of its own (4-7 s on a busy
2-core machine, measured) and write to the SQLite store beside the others.
Instead a worker sends plain events through a queue (:class:`SeedReporter`,
no MLflow import) and one thread of the stage process (:class:`SeedRunRelay`)
turns them into the seed's MLflow run: opened when the seed starts, each
epoch's metrics as it ends, closed when the seed is done, all with the
worker's timestamps, so durations and curves are the seed's own.
"""

from __future__ import annotations

import contextlib
import queue as queue_module
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

_STOP = ("stop",)
_DRAIN_SECONDS = 60.0  # after the stage's work: the most the relay takes to log what is left


def _now_ms() -> int:
    return int(time.time() * 1000)


class SeedReporter:
    """The seed's run as the worker sees it (the interface :class:`mmib.epoch_metrics.EpochLogger`
    uses): every call becomes an event on ``queue``; a no-op without a queue."""

    def __init__(self, queue: Any, seed: int) -> None:
        self._queue = queue
        self.seed = seed

    @property
    def enabled(self) -> bool:
        return self._queue is not None

    def _put(self, kind: str, *payload: Any) -> None:
        if self._queue is not None:
            self._queue.put((kind, self.seed, _now_ms(), *payload))

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        self._put("metrics", {k: float(v) for k, v in metrics.items()}, int(step or 0))

    def log_curve(self, curves: Mapping[str, Sequence[float]], start: int = 0) -> None:
        self._put("curve", {k: [float(x) for x in v] for k, v in curves.items()}, start)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self._put("tags", {k: str(v) for k, v in tags.items()})


@contextlib.contextmanager
def seed_report(queue: Any, seed: int) -> Iterator[SeedReporter]:
    """Open the seed's run (event ``open``) around the block; ``close`` FINISHED, or FAILED when
    the block raises."""
    reporter = SeedReporter(queue, seed)
    reporter._put("open")
    status = "FAILED"
    try:
        yield reporter
        status = "FINISHED"
    finally:
        reporter._put("close", status)


class SeedRunRelay:
    """In the stage process: a thread that opens, logs and closes the seed runs (children of
    ``stage_run``, a :class:`mmib.tracking.StageRun`) from the workers' events.

    Use as a context manager around the training; ``queue`` (default: an in-process queue) is
    what the workers report to; None when tracking is off. On exit, after the workers have ended
    (their queued events are then all in the queue: a process flushes its queue before it exits),
    it logs what is left and closes a seed run still open FAILED (its worker died). A tracking
    error is reported and skipped: it never stops the training.
    """

    def __init__(self, stage_run: Any, queue: Any = None) -> None:
        self.stage_run = stage_run
        self.queue = (queue if queue is not None else queue_module.Queue()) if stage_run.enabled else None
        self.runs: dict[int, Any] = {}
        self.closed: set[int] = set()
        self._thread: threading.Thread | None = None
        self._warned = False

    def __enter__(self) -> "SeedRunRelay":
        if self.queue is not None:
            self._thread = threading.Thread(target=self._loop, name="mmib-seed-runs", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        if self._thread is None:
            return
        self.queue.put(_STOP)
        self._thread.join(timeout=_DRAIN_SECONDS)
        for seed, run in self.runs.items():
            if seed not in self.closed:  # its worker died, or its events never came
                self._guard(run.terminate, "FAILED", _now_ms())

    def _loop(self) -> None:
        while True:
            event = self.queue.get()
            if event == _STOP:
                return
            self._guard(self._handle, *event)

    def _guard(self, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - tracking must not stop a training
            if not self._warned:
                self._warned = True
                print(f"warning: MLflow seed run logging failed ({exc}); training goes on",
                      file=sys.stderr, flush=True)

    def _handle(self, kind: str, seed: int, ts: int, *payload: Any) -> None:
        if kind == "open":
            self.runs[seed] = self.stage_run.open_seed_run(seed, start_time=ts)
            return
        run = self.runs[seed]
        if kind == "metrics":
            run.log_metrics(payload[0], step=payload[1], timestamp=ts)
        elif kind == "curve":
            run.log_curve(payload[0], start=payload[1])
        elif kind == "tags":
            run.set_tags(payload[0])
        elif kind == "close":
            run.terminate(payload[0], ts)
            self.closed.add(seed)
