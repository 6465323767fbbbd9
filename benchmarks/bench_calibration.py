"""Calibration of the paired tests: null rejection rate at 0.05 and CI coverage (issue 12 goals:
3-6 % and 93-97 %), binary (exact McNemar mid-p + Newcombe interval) and continuous (sign-flip
test + t interval), n = 19 and n = 300. Prints `name: value` lines."""
from __future__ import annotations

import argparse

from clas_lens.metrics.calibration import simulate_null


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=2000)
    ap.add_argument("--device", default="cpu", help="accepted like every bench script; no model runs here (CPU)")
    ap.add_argument("--dtype", default="float32", help="accepted like every bench script; no model runs here")
    args = ap.parse_args()
    for n in (19, 300):
        for kind in ("binary", "continuous"):
            r = simulate_null(n, kind, runs=args.runs, seed=0, n_resamples=1999)
            print(f"null_rejection_{kind}_n{n}: {r['rejection_rate']:.4f}")
            print(f"ci_coverage_{kind}_n{n}: {r['coverage']:.4f}")


if __name__ == "__main__":
    main()
