"""ALI reproducibility suite: Adversarially Learned Inference (Dumoulin et al., ICLR 2017), retrained."""

__version__ = "0.1.0"
