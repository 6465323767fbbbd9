"""The package-scoped two-process launch (see _launch.py): one spawn for all multi-process tests."""
from __future__ import annotations

import pytest
import torch

from distributed._launch import WORLD, free_port, sweep_setup, worker


@pytest.fixture(scope="package")
def launched(tmp_path_factory):
    """Build the model folder, run a partial sweep in one process, then the 2-process group."""
    from clas_lens.models import load_model
    from clas_lens.sweep import run_sweep
    from clas_lens.testing import tiny_model_folder

    root = tmp_path_factory.mktemp("dist")
    folder = tiny_model_folder("llama", seed=0, folder=root / "model")
    model = load_model(folder)
    grid, neurons, tasks = sweep_setup(model)
    # 3 cells done by one process before: the group must skip them
    run_sweep(model, root / "sweep_run", grid, neurons=neurons, tasks=tasks, cells=grid.cells()[:3], progress=False)
    torch.multiprocessing.spawn(worker, args=(str(folder), str(root), free_port()), nprocs=WORLD, join=True)
    return root, model
