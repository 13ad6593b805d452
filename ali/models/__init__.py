"""Models. Each owns its networks, its losses and one ``train_step(x) -> dict of losses``."""

from ali.models import ali, gan, inverse, kplus1, posthoc, vae  # noqa: F401  (each registers itself)
from ali.models.base import MODELS, Model, build_model  # noqa: F401
