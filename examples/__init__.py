"""Models written against the suite's plug-in contract (``ali/models/plugin.py``), importable as ``examples.*``."""
