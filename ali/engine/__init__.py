"""The run-batched maths of the 25-mode mixture: many ALI (or GAN) runs as one batched model.

- ``batched.py``: the mixture networks and losses for R runs (bmm over a run axis, per-run BatchNorm);
- ``adam.py``: torch.optim.Adam's update for all runs at once, with per-run lr, betas, step counts, freeze;
- ``noise.py``: counter-based Gaussian noise, a function of (run seed, step, pass, index);
- ``state.py``: each player's parameters as one flat (R, P) tensor;
- ``step.py``: one training step of the group, in place (eager, or captured).

Building a group from solo models, training it, checkpoints and records are the run lifecycle's
(``ali.train.group``). The solo models in ``ali/models`` stay the reference: the engine restates their
layers batched over runs, calls their games (``ali.models.losses``), and its tests compare the two,
feeding the solo step the same noise. A group step's dispatched ops do not depend on the number of runs.
"""
