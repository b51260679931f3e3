"""The operator's caches: the latest Pipelines and pods the watches delivered.

Pods are indexed by their Pipeline's uid (the ``podline.dev/pipeline-uid`` label), so a reconcile finds the
pods of earlier runs without a list request. Write pods only through ``put_pod``/``drop_pod``; a cached pod
is its metadata and status (``slim_pod``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from podline.core import conventions
from podline.shell import kube

Key = tuple[str, str]  # (namespace, name)


@dataclass
class Caches:
    """The latest objects the watches delivered, keyed by (namespace, name); pods also by their Pipeline's uid."""

    pipelines: dict[Key, Mapping[str, Any]] = field(default_factory=dict)
    pods: dict[Key, Mapping[str, Any]] = field(default_factory=dict)
    _by_uid: dict[str, set[Key]] = field(default_factory=dict)

    def put_pod(self, key: Key, pod: Mapping[str, Any]) -> None:
        self.drop_pod(key)
        pod = slim_pod(pod)
        self.pods[key] = pod
        uid = _pipeline_uid(pod)
        if uid:
            self._by_uid.setdefault(uid, set()).add(key)

    def drop_pod(self, key: Key) -> None:
        old = self.pods.pop(key, None)
        uid = _pipeline_uid(old) if old is not None else None
        if uid and uid in self._by_uid:
            self._by_uid[uid].discard(key)
            if not self._by_uid[uid]:
                del self._by_uid[uid]

    def pods_of(self, uid: str) -> list[Mapping[str, Any]]:
        return [self.pods[k] for k in sorted(self._by_uid.get(uid, ()))]


# What the operator reads of a pod: its metadata (labels, annotations, owners, versions) and its status. Its
# spec is the plan's (``core.pods`` builds it from the plan): on a run pod, the steps' commands, environment and
# mounts are most of the object, so the cache keeps neither the spec nor the managed fields.
POD_FIELDS = ("apiVersion", "kind", "metadata", "status")


def slim_pod(pod: Mapping[str, Any]) -> dict[str, Any]:
    """The part of ``pod`` the operator reads (``POD_FIELDS``, without ``metadata.managedFields``)."""
    return kube.lean({k: pod[k] for k in POD_FIELDS if k in pod})


def _pipeline_uid(pod: Mapping[str, Any]) -> str | None:
    uid = (pod.get("metadata", {}).get("labels") or {}).get(conventions.LABEL_PIPELINE_UID)
    return None if uid is None else str(uid)
