"""``python -m clas_lens`` runs the command line (also under torchrun)."""
import sys

from clas_lens.cli import main

sys.exit(main())
