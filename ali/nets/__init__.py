"""Networks: shared layers and the builders for each experiment's architectures."""
