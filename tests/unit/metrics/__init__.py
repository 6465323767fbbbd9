"""Tests of clas_lens.metrics, one module per code module (a package: basenames may repeat
elsewhere under tests/unit)."""
