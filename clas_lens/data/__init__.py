"""Multilingual data: parallel corpora, tasks, language identification."""
