"""Measuring exports: fidelity against the unquantized reference (fidelity.py) on an offline
corpus (corpus.py); answer quality: endings and loops (quality.py, its backends in
quality_backends.py); and their tables (report.py)."""
