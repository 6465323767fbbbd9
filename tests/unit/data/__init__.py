"""Tests of clas_lens.data (a package so that test file names may repeat across folders)."""
