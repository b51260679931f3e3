"""podline: run Drone-style CI pipelines on Kubernetes, one pod per run.

Layers (enforced by import-linter, see pyproject.toml):
  podline.core   pure translation and decision logic: no I/O, no clock, no cluster;
  podline.shell  the kopf operator: reads the cluster, calls the core, writes the result;
  podline.cli    the `podline` console script.
"""
