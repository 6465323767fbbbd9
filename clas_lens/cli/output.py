"""What the command line prints besides results: :func:`log` lines on stderr (none under
``--quiet``), :func:`cli_output` (third-party warnings hidden, progress bars off under
``--quiet``) and :func:`print_table` (a result table on stdout).
"""
from __future__ import annotations

import contextlib
import sys
import warnings
from typing import Iterator


_QUIET = False
#: Packages whose warnings the command line does not show (their FutureWarnings and
#: DeprecationWarnings concern their own next releases, not the user's results).
THIRD_PARTY = (
    "torch", "transformers", "transformer_lens", "accelerate", "datasets", "huggingface_hub", "tokenizers",
    "safetensors", "einops", "numpy", "pandas", "scipy", "sklearn", "umap", "pynndescent", "numba", "plotly",
    "kaleido", "tqdm",
)


def log(message: str) -> None:
    """A log line on stderr (nothing under ``--quiet``); results go to stdout."""
    if not _QUIET:
        print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def cli_output(quiet: bool = False) -> Iterator[None]:
    """While the command runs: third-party warnings hidden (transformers' logging at error
    level too), and with ``quiet`` no log lines and no progress bars (tqdm's and
    transformers'). Everything is restored afterwards.

    >>> import warnings
    >>> with cli_output():
    ...     warnings.warn_explicit("old", FutureWarning, "x.py", 1, module="transformers.generation")
    """
    global _QUIET
    import tqdm.std
    from transformers.utils import logging as hf_logging

    before = (_QUIET, hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled(), tqdm.std.tqdm.__init__)
    init = before[3]

    def silent_init(self, *a, **k):
        k["disable"] = True
        init(self, *a, **k)

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"(%s)(\.|$)" % "|".join(THIRD_PARTY))
        warnings.filterwarnings("ignore", message=r".*`past_key_values` is deprecated", category=FutureWarning)
        hf_logging.set_verbosity_error()
        _QUIET = bool(quiet)
        if quiet:
            hf_logging.disable_progress_bar()
            tqdm.std.tqdm.__init__ = silent_init
        try:
            yield
        finally:
            _QUIET = before[0]
            hf_logging.set_verbosity(before[1])
            if before[2]:
                hf_logging.enable_progress_bar()
            tqdm.std.tqdm.__init__ = init


def print_table(df) -> None:
    """``df`` on stdout, numbers with three decimals, up to 20 columns.

    >>> import pandas as pd
    >>> print_table(pd.DataFrame({"x": [0.5]}))
        x
    0.500
    """
    import pandas as pd

    with pd.option_context("display.max_columns", 20, "display.width", 140, "display.float_format", "{:.3f}".format):
        print(df.to_string(index=False))
