"""Where ``podline logs --run`` and ``podline get`` read past runs: a store, or the operator that serves it.

``StoreRuns`` reads an archive store directly (``--archive URL`` or ``$PODLINE_ARCHIVE``: a reachable
directory, or S3 with the user's own ``AWS_*`` credentials). ``OperatorRuns`` asks the operator's read-only
archive endpoint (``shell.archiveserving``) through the Kubernetes API server's service proxy, with the
user's kubeconfig, so a past run is readable wherever ``kubectl`` works, also when the archive is a
directory inside the operator pod (the chart's default). The Service is ``--operator NS/SERVICE``,
``$PODLINE_OPERATOR``, or the chart's ``podline-system/podline-archive``; who may read is RBAC ``get`` on
its ``services/proxy`` (``core.archivepaths.explain`` says so on a 403). Both raise ``Unreadable`` with a
sentence, never a traceback. CLI code on the synchronous Kubernetes client, beside ``viewing``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any, Protocol

import kubernetes
import urllib3

from podline.core import archivepaths, records
from podline.shell import archiving

CHUNK_BYTES = 64 * 1024


class Unreadable(Exception):
    """The archive cannot be read (the message says why, for a person)."""


class PastRuns(Protocol):
    where: str

    def runs(self, namespace: str, pipeline: str) -> list[dict[str, Any]]:
        """The records of the Pipeline's archived runs, newest first."""
        ...

    def record(self, namespace: str, pipeline: str, run: str) -> dict[str, Any] | None:
        """One run's record, or None when the run is not archived."""
        ...

    def log(self, namespace: str, pipeline: str, run: str, container: str) -> Iterator[bytes]:
        """A step's archived output, in chunks (none when there is no log)."""
        ...


class StoreRuns:
    """An archive store read directly."""

    def __init__(self, store: archiving.Store) -> None:
        self.store, self.where = store, f"the archive {store.url}"

    def _run(self, coro: Any) -> Any:
        try:
            return asyncio.run(coro)
        except Exception as exc:  # noqa: BLE001 - the store's own errors: said, never a traceback
            raise Unreadable(f"cannot read {self.where}: {archiving.describe_error(exc)}") from None

    def runs(self, namespace: str, pipeline: str) -> list[dict[str, Any]]:
        keys = self._run(self.store.keys(f"{namespace}/{pipeline}/"))
        found = [self._run(self.store.get(k)) for k in keys if k.endswith("/" + records.RECORD)]
        return [dict(r) for r in archivepaths.newest_first(json.loads(d) for d in found if d)]

    def record(self, namespace: str, pipeline: str, run: str) -> dict[str, Any] | None:
        data = self._run(self.store.get(records.run_prefix(namespace, pipeline, run) + records.RECORD))
        return None if data is None else dict(json.loads(data))

    def log(self, namespace: str, pipeline: str, run: str, container: str) -> Iterator[bytes]:
        data = self._run(self.store.get(records.log_key(namespace, pipeline, run, container)))
        if data:
            yield data


class OperatorRuns:
    """The operator's archive endpoint, through the API server's service proxy, as the kubeconfig's user."""

    def __init__(self, client: Any, operator: archivepaths.Operator) -> None:
        self.client, self.operator = client, operator
        self.where = f"the operator's archive (Service {operator})"

    def _get(self, query: archivepaths.Query) -> Any:
        """The open response (urllib3, not yet read), or None for a 404 the operator gave (not archived)."""
        try:
            method, url, headers, _, _ = self.client.param_serialize(
                "GET",
                self.operator.proxy_path(query),
                header_params={"Accept": "*/*"},
                auth_settings=["BearerToken"],
            )
            answer = self.client.call_api(method, url, header_params=headers)
        except kubernetes.client.ApiException as exc:  # no answer at all (TLS, connection)
            raise Unreadable(
                f"cannot reach the API server for {self.where}: {exc.reason or exc.status}"
            ) from None
        except (OSError, urllib3.exceptions.HTTPError) as exc:
            raise Unreadable(f"cannot reach the API server for {self.where}: {type(exc).__name__}") from None
        if answer.status == 200:
            return answer.response
        body = answer.read().decode(errors="replace")
        if answer.status == 404 and '"error"' in body:
            return None
        raise Unreadable(archivepaths.explain(self.operator, int(answer.status), body))

    def _json(self, query: archivepaths.Query) -> Any:
        response = self._get(query)
        if response is None:
            return None
        try:
            return json.loads(response.data)
        except ValueError:
            raise Unreadable(f"{self.where} answered something that is not JSON") from None

    def runs(self, namespace: str, pipeline: str) -> list[dict[str, Any]]:
        answer = self._json(archivepaths.Query(namespace, pipeline)) or {}
        return [dict(r) for r in answer.get("runs") or [] if isinstance(r, dict)]

    def record(self, namespace: str, pipeline: str, run: str) -> dict[str, Any] | None:
        answer = self._json(archivepaths.Query(namespace, pipeline, run))
        return dict(answer) if isinstance(answer, dict) else None

    def log(self, namespace: str, pipeline: str, run: str, container: str) -> Iterator[bytes]:
        response = self._get(archivepaths.Query(namespace, pipeline, run, container))
        if response is None:
            return
        try:
            yield from response.stream(CHUNK_BYTES)
        finally:
            response.release_conn()


def choose(archive: str, operator: str) -> PastRuns:
    """A store when one is named (``--archive``/``$PODLINE_ARCHIVE``), else the operator (``--operator``/
    ``$PODLINE_OPERATOR``/the chart's default). The kubeconfig must already be loaded. ValueError says which
    option is wrong."""
    if archive:
        try:
            return StoreRuns(archiving.open_store(archive))
        except ValueError as error:
            raise ValueError(f"--archive: {error}") from None
    try:
        parsed = archivepaths.parse_operator(operator or archivepaths.DEFAULT_OPERATOR)
    except ValueError as error:
        raise ValueError(f"--operator: {error}") from None
    return OperatorRuns(kubernetes.client.ApiClient(), parsed)
