"""clas_lens."""
