"""Large synthetic training sweeps, on this machine or a Dask cluster (fastbp.sweep).

    python scripts/sweep.py --config scripts/sweep_grid.toml --out results/
    python scripts/sweep.py --config grid.toml --out results/ --scheduler tcp://127.0.0.1:8786

See `python scripts/sweep.py --help` and the module fastbp.sweep for the grid's keys.
"""
import sys

from fastbp.sweep import main

if __name__ == "__main__":
    sys.exit(main())
