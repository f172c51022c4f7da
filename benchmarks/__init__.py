"""asv benchmarks of fastbp. Run from the repository root: ``asv run --python=same --quick``."""
