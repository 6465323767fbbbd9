"""Tests of clas_lens.evaluation, one module per evaluation module."""
