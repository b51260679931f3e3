"""The pure core: models, image references, pull policy, registry auth, pods and the step scheduler.

Nothing here performs I/O, reads the clock or the environment, or imports kopf/kubernetes/asyncio.
Effects (secret lookup, time, names) are passed in by the shell.
"""
