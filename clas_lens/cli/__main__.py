"""``python -m clas_lens.cli``: the ``clas-lens`` command line."""
import sys

from clas_lens.cli.program import main

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
