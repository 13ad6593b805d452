"""The four experiments under one contract (``ali.experiments.base``): each module registers itself."""

from ali.experiments import images, mixture, semisup, svm  # noqa: F401  (registration)
from ali.experiments.base import EXPERIMENTS, Experiment, RunContext, experiment  # noqa: F401
