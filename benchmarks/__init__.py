"""Speed benchmarks: `python -m benchmarks.NAME` writes benchmarks/results/NAME.json."""
