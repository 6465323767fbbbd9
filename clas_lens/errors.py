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


class NonFiniteError(ClasLensError, ValueError):
    """A model output or a computed score is NaN or infinite (e.g. a steering strength so large
    that activations overflow): the numbers would be meaningless, so nothing is scored from them."""


class RunDirectoryError(ClasLensError, ValueError):
    """A run directory cannot be used safely: it is not a clas_lens run directory, it holds a
    symbolic link, or its name would leave the output folder. Nothing was deleted."""


class RunLockedError(RunDirectoryError):
    """Another live process holds the run directory's lock."""


class NotARunDirectoryError(RunDirectoryError, FileNotFoundError):
    """A folder given as a run directory has no ``run.json`` (no run was made there yet)."""
