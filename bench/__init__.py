"""Benchmarks: `python -m bench.<name>`, each printing medians and ratios against a named baseline."""
