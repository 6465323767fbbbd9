"""Tests of clas_lens.data.tasks, one module per task module."""
