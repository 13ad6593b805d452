"""Datasets: the generated 25-mode mixture (and, later, the image sets)."""
