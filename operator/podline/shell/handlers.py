"""kopf handlers: the only place podline registers with kopf.

Two watches feed the reconciler's caches and wake it: Pipelines, and pods labelled as podline's. The
handlers only record the object and kick a reconcile of its Pipeline; they never block on the API, so a
slow call for one Pipeline cannot hold up events for another. No kopf finalizers and no kopf progress
annotations are used: ownerReferences clean up, and run state is derived from the pod. The one finalizer is
the archive's, on run pods (``shell.archiving``): a background task removes it, never a handler.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

import kopf

from podline.core import conventions
from podline.shell import archiveserving, archiving, imagereading, kube, metrics, reconciling
from podline.shell import settings as settings_

log = logging.getLogger("podline")
POD_LABELS = {conventions.LABEL_MANAGED_BY: conventions.MANAGED_BY}


class NoEssence(kopf.DiffBaseStorage):
    """Keeps nothing: with no essence, kopf detects no changes and copies nothing."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> None:  # type: ignore[override]
        return None

    def fetch(self, *, body: kopf.Body) -> None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: Any) -> None:
        return None


def _reconciler(memo: Any) -> reconciling.Reconciler:
    return memo["reconciler"]  # type: ignore[no-any-return]


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    config: settings_.Settings = memo["settings"]
    settings.posting.enabled = False  # podline posts its own few Events; kopf's would be per handler call
    settings.scanning.disabled = True  # no CRD/namespace scanning: needs no cluster-wide read of CRDs
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.reconnect_backoff = 1.0
    settings.networking.request_timeout = 60
    # Only podline's pods travel from the apiserver: pods of other workloads never reach the operator.
    settings.watching.label_selectors["pods"] = f"{conventions.LABEL_MANAGED_BY}={conventions.MANAGED_BY}"
    # kopf keeps an "essence" of every object (two deep copies per event) to detect changes for
    # on.create/update/field handlers; podline has only on.event handlers, which need none.
    settings.persistence.diffbase_storage = NoEssence()
    api = kube.Kube(
        functools.partial(kube.login, settings=settings, logger=log),
        connections=config.api_workers,
        timeout=settings.networking.request_timeout or 60,
    )
    images = imagereading.ImageConfigs.from_settings(config)
    reconciler = reconciling.Reconciler(api, config, images=images)
    memo["reconciler"] = reconciler
    memo["resync"] = asyncio.get_running_loop().create_task(_resync(reconciler, config.resync_seconds))
    if config.archive_url:
        store = archiving.open_store(config.archive_url)
        archiver = archiving.Archiver(
            api,
            reconciler.caches,
            store,
            log_limit_bytes=config.policy.log_limit_bytes,
            retention=config.log_retention,
            archive_wait_seconds=config.archive_wait_seconds,
            forget_deleted=config.archive_on_delete == "delete",
            on_archived=reconciler.kick,
        )
        memo["archiver"] = archiver
        memo["archiving"] = asyncio.get_running_loop().create_task(archiver.run_forever())
        log.info("archiving each step as it ends to %s", config.archive_url)
        if config.archive_port:
            memo["archive_server"] = await archiveserving.start(store, config.archive_port)
    else:  # pods made while the archive was on carry its finalizer: released
        releaser = archiving.Releaser(api, reconciler.caches)
        memo["archiver"] = releaser
        memo["archiving"] = asyncio.get_running_loop().create_task(releaser.run_forever())
    metrics.serve(config.metrics_port)
    log.info("podline operator started (namespaces: %s)", ", ".join(config.namespaces) or "all")


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo:
    return kube.login(**kwargs)


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    for name in ("resync", "archiving"):
        task = memo.get(name)
        if task:
            task.cancel()
    server = memo.get("archive_server")
    if server:
        await server.cleanup()
    reconciler = memo.get("reconciler")
    if reconciler:
        await reconciler.api.close()
        if isinstance(reconciler.images, imagereading.ImageConfigs):
            await reconciler.images.close()


async def _resync(reconciler: reconciling.Reconciler, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        reconciler.resync()


@kopf.on.event(conventions.GROUP, conventions.VERSION, conventions.PLURAL)
async def pipeline_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    obj = kube.lean(event["object"])
    meta = obj.get("metadata", {})
    key = (meta.get("namespace", ""), meta.get("name", ""))
    reconciler = _reconciler(memo)
    if event.get("type") == "DELETED":
        reconciler.forget(key)
        reconciler.kick_build(key, obj)  # dependents that have not begun wait for it again
        archiver = memo.get("archiver")
        if isinstance(archiver, archiving.Archiver) and reconciler.settings.archive_on_delete == "delete":
            await archiver.forget_pipeline(*key)
        return
    news = not _same_version(reconciler.caches.pipelines.get(key), obj)
    reconciler.caches.pipelines[key] = obj
    if news:  # else the echo of the operator's own write: its reconcile has seen this state already
        reconciler.kick(key)
        reconciler.kick_build(key, obj)  # a new or changed member changes what its build's others wait for


@kopf.on.event("", "v1", "pods", labels=POD_LABELS)
async def pod_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    obj = kube.lean(event["object"])
    meta = obj.get("metadata", {})
    namespace = meta.get("namespace", "")
    reconciler = _reconciler(memo)
    key = (namespace, meta.get("name", ""))
    news = True
    if event.get("type") == "DELETED":
        reconciler.caches.drop_pod(key)
    else:
        news = not _same_version(reconciler.caches.pods.get(key), obj)
        reconciler.caches.put_pod(key, obj)
    pipeline = (meta.get("annotations") or {}).get(conventions.ANNOTATION_PIPELINE_NAME)
    if pipeline and news:
        reconciler.kick((namespace, pipeline))
        if memo.get("archiver"):
            memo["archiver"].poke()


def _same_version(cached: Any, obj: Any) -> bool:
    """Whether the cache holds this very version already (the operator stored its own write's response)."""
    version = obj.get("metadata", {}).get("resourceVersion")
    return bool(cached and version and cached.get("metadata", {}).get("resourceVersion") == version)


def run(config: settings_.Settings) -> None:
    """Run the operator until it is stopped (``podline operator``)."""
    kopf.configure(
        log_format=kopf.LogFormat.JSON if config.log_format == "json" else kopf.LogFormat.PLAIN,
        debug=config.log_level == "DEBUG",
        verbose=config.log_level == "DEBUG",
        quiet=config.log_level in ("WARNING", "ERROR"),
    )
    logging.getLogger("podline").setLevel(config.log_level)
    # kopf logs "Handler 'pod_event' succeeded." at INFO for every watch event: noise, and CPU on the hot path.
    logging.getLogger("kopf.objects").setLevel(
        logging.DEBUG if config.log_level == "DEBUG" else logging.WARNING
    )
    liveness = f"http://0.0.0.0:{config.liveness_port}/healthz" if config.liveness_port else None
    kopf.run(
        standalone=True,
        clusterwide=not config.namespaces,
        namespaces=config.namespaces,
        liveness_endpoint=liveness,
        memo=kopf.Memo(settings=config),
    )
