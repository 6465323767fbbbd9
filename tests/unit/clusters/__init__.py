"""Tests of clas_lens.clusters, one module per code module (a package: basenames such as
test_compare.py may exist elsewhere under tests/unit)."""
