"""Benchmarks of the podline operator on the api tier of the test cluster (numbers, not tests).

Entry point: ``python -m bench.run [--quick] [--out bench/results]``; see bench/README.md.
"""
