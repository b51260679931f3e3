"""Benchmarks of podline on the test cluster (numbers, not tests), in two tiers:

- the node tier (``bench.nodebench``): what a pipeline takes on a real kubelet and containerd, next to
  drone-runner-kube, Tekton's entrypoint and the floor, measured in the same run;
- the api tier (``bench.scenarios``): the operator's and the apiserver's own cost, with the scripted kubelet.

Entry point: ``python -m bench.run [--tier api|node] [--quick] [--out bench/results]``; see bench/README.md.
"""
