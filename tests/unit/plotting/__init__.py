"""Tests of clas_lens.plotting, one module per code module (a package: basenames such as
test_clusters.py also exist elsewhere under tests/unit)."""
