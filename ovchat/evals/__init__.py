"""Measuring exports: fidelity against the unquantized reference (fidelity.py) on an offline
corpus (corpus.py), and its tables (report.py)."""
