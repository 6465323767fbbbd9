"""Errors raised by clas_lens. Every message names the problem and the fix."""


class ClasLensError(Exception):
    """Base class of every error clas_lens raises on purpose."""


class ModelLoadError(ClasLensError, RuntimeError):
    """A model could not be found, verified, converted or booted."""


class UnsupportedModelError(ModelLoadError, ValueError):
    """The architecture has no MLP neuron hooks clas_lens can read."""


class DataValidationError(ClasLensError, ValueError):
    """Corpus, task or config data is malformed (misaligned, empty, unknown language...)."""


class MismatchError(ClasLensError, ValueError):
    """Results computed for one model or site were used with another."""


class ContextLengthError(ClasLensError, ValueError):
    """A text is longer than the model context and truncation was not allowed."""
