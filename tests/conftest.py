"""Shared pytest configuration. Cluster fixtures live in tests/cluster/fixtures.py (plugin below)."""

pytest_plugins = ["tests.cluster.fixtures"]
