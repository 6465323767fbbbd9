"""The whole CLAS pipeline into one self-describing run directory.

``run_pipeline(cfg)`` (CLI: ``clas-lens run CONFIG.toml``) runs, each step resumable
(:mod:`~clas_lens.pipeline.steps`), the design of docs/methods.md ("Evaluation"): neuron
statistics and identification on the corpus's ``stats`` split, with their split-half stability;
the positive control (deactivating each language's LAPE neurons on held-out sentences); each
steering method's setting chosen on ``dev`` by a named rule (:mod:`~clas_lens.pipeline.select`);
every task on ``test`` at the chosen settings, beside the controls of CLAS (random neurons,
uniform gain, boost-only, suppress-only); residual-stream clusters of held-out sentences
unsteered and under CLAS and the divergence test; the closing summary (``summary.md``,
``summary/*.csv``, :mod:`~clas_lens.pipeline.summary_md`); then every figure, which
:func:`make_figures` (CLI: ``clas-lens figures RUN_DIR``) rebuilds from the saved files alone
(:mod:`~clas_lens.pipeline.report`).

``run.json`` records the resolved config, package versions, the model identity and the git
commit (:mod:`~clas_lens.pipeline.rundir`). A rerun with the same config skips finished work;
a different config against the same directory is refused unless ``restart=True``.

>>> from clas_lens.config import RunConfig
>>> focus_setting(RunConfig.from_dict({"steering": {"betas": [0.1, 0.3]}}))["beta"]
0.3
"""
from __future__ import annotations

from clas_lens.pipeline.report import divergence_points, make_figures, print_summary, summary_table
from clas_lens.pipeline.run import run_pipeline
from clas_lens.pipeline.rundir import load_run_config, read_sweep_csv
from clas_lens.pipeline.select import SELECT_RULE, select_settings
from clas_lens.pipeline.steps import FOCUS_KEYS, focus_setting, language_gains, sweep_grid
from clas_lens.pipeline.summary_md import summary_markdown, write_summary
from clas_lens.pipeline.sweeps import design_grid, load_selection

__all__ = [
    "run_pipeline",
    "make_figures",
    "summary_table",
    "print_summary",
    "divergence_points",
    "focus_setting",
    "language_gains",
    "sweep_grid",
    "load_run_config",
    "read_sweep_csv",
    "FOCUS_KEYS",
    "SELECT_RULE",
    "select_settings",
    "design_grid",
    "load_selection",
    "summary_markdown",
    "write_summary",
]
