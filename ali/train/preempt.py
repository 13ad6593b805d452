"""Preemption: a cluster's SIGTERM (or the SIGUSR1 a SLURM job asks for with ``--signal``) stops a
training job at the next step boundary, with a checkpoint of that step, instead of losing the steps
since the last periodic checkpoint.

Only the command line's train path installs the handlers (``stop_on_signals``); library calls and
tests that do not ask for them keep Python's defaults. Once a training loop has started
(``StopRequest.defer``), the handler only sets a flag, which the loop driver reads once per step (an
attribute read: no system call); the driver then writes the checkpoint and raises ``Preempted``,
and the command exits with ``PREEMPTED_EXIT``. A signal after the loop, while the job writes its
outputs, waits for a later loop of the same job, if any: the outputs are finished first. Before any
loop (building, loading data, or a job that trains nothing, such as SVM features) there is nothing
to save, and the handler raises ``Preempted`` at once.

Why 75: it is ``EX_TEMPFAIL`` of sysexits.h ("a temporary failure; the user is invited to retry"),
distinct from 0 (done), 1 (a crash), 2 (the suite's one-line errors) and 128+N (killed by signal N
before it could save). Snakemake's ``retries`` rerun any non-zero job, and the rerun resumes from
the checkpoint; SLURM requeues a preempted job itself when submitted with ``--requeue``.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

PREEMPTED_EXIT = 75  # EX_TEMPFAIL: rerun me
SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class StopRequest:
    """Set by a signal handler, read by the loop at each step boundary."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.deferring = False  # True once a loop polls the flag: stop at its next step boundary

    def defer(self) -> None:
        """From now until the handlers are removed, a signal waits for a step boundary."""
        self.deferring = True

    def handle(self, signum: int, frame) -> None:
        self.signum = signum
        if not self.deferring:
            raise Preempted(signum, None, None)


STOP = StopRequest()


class Preempted(BaseException):
    """Training stopped on a signal: at a step boundary with a checkpoint of that step written, or
    before training started. A BaseException, as KeyboardInterrupt: no ``except Exception`` (a
    reader turning errors into its own message, say) may swallow it."""

    def __init__(self, signum: int, step: int | None, checkpoint):
        self.signum, self.step, self.checkpoint = signum, step, checkpoint
        name = signal.Signals(signum).name
        if step is None:
            message = f"stopped by {name} before training started; nothing to save: run the same command again"
        else:
            message = (f"stopped by {name} after step {step}; checkpoint {checkpoint} written: run the same "
                       f"command again to resume from it")
        super().__init__(message)


@contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """SIGTERM and SIGUSR1 ask the loop to stop at the next step boundary; the previous handlers
    (and a clear flag) come back on exit."""
    before = {s: signal.getsignal(s) for s in SIGNALS}
    STOP.signum, STOP.deferring = None, False
    try:
        for s in SIGNALS:
            signal.signal(s, STOP.handle)
        yield STOP
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
        STOP.signum, STOP.deferring = None, False
