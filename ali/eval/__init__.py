"""Metrics: mode coverage, inference quality."""
