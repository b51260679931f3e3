"""Shared pytest configuration: the test cluster fixtures are a plugin (see tests/cluster/fixtures.py)."""

pytest_plugins = ["tests.cluster.fixtures"]
