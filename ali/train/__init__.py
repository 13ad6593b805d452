"""The run lifecycle: how any run, solo or a group of runs trained as one batched model, is trained.

One file for each thing:
- ``runtime.py``: seeding; the device (``cuda:N`` becomes the current device); precision and the one
  check of device x precision x capture;
- ``loop.py``: the one loop driver (resume, steps, logging, divergence, checkpoints, preemption, a
  simulated kill) and the solo run (``train``, ``run_training``);
- ``group.py``: a group of mixture runs as the loop's trainee (``train_group``, ``build_group``);
- ``graph.py``: the one CUDA-graph runner (warm-up without trace, generators, eager fallback);
- ``checkpoint.py``: the one checkpoint codec (hash and device-kind guard, RNG states);
- ``record.py``: the one writer and reader of a run directory's record, weights and spec;
- ``progress.py``: the progress bar or lines and ``history.csv``;
- ``files.py``: atomic writes (a kill or a full disk never leaves half a file) and reads that refuse
  a bad file in one line (``UnusableFileError``);
- ``preempt.py``: SIGTERM / SIGUSR1 under ``ali train``: a checkpoint at the next step, exit 75.
"""
