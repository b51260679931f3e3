"""The operator's caches: the latest Pipelines and pods the watches delivered.

Pods are indexed by their Pipeline's uid (the ``podline.dev/pipeline-uid`` label), so a reconcile finds the
pods of earlier runs without a list request. Write pods only through ``put_pod``/``drop_pod``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from podline.core import conventions

Key = tuple[str, str]  # (namespace, name)


@dataclass
class Caches:
    """The latest objects the watches delivered, keyed by (namespace, name); pods also by their Pipeline's uid."""

    pipelines: dict[Key, Mapping[str, Any]] = field(default_factory=dict)
    pods: dict[Key, Mapping[str, Any]] = field(default_factory=dict)
    _by_uid: dict[str, set[Key]] = field(default_factory=dict)

    def put_pod(self, key: Key, pod: Mapping[str, Any]) -> None:
        self.drop_pod(key)
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


def _pipeline_uid(pod: Mapping[str, Any]) -> str | None:
    uid = (pod.get("metadata", {}).get("labels") or {}).get(conventions.LABEL_PIPELINE_UID)
    return None if uid is None else str(uid)
