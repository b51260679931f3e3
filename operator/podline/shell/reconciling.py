"""One reconcile of one Pipeline: gather state, call ``scheduling.decide``, carry out the decision.

The caches (``caches``), the work queue that runs reconciles (``queueing``) and the status-write throttle
(``statuswriting``) are modules of their own; this one reads, decides and acts.

Level-triggered: whatever event woke it (Pipeline change, pod change, resync timer, a timeout coming
due), a reconcile reads the current Pipeline and pod and decides from them alone. Reconciles of one
Pipeline never overlap; events arriving meanwhile coalesce into one more pass. A 409 on the pod patch
means the pod changed since it was read: read it again and decide again (nothing was started).
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from podline.core import (
    auths,
    builds,
    concurrency,
    conventions,
    errors,
    imageconfigs,
    observing,
    plans,
    runs,
    scheduling,
    statuses,
    stepping,
)
from podline.shell import caches as caches_
from podline.shell import kube, metrics, queueing, statuswriting
from podline.shell import settings as settings_

log = logging.getLogger("podline")
Key = tuple[str, str]  # (namespace, name)
MAX_CONFLICT_RETRIES = 5
CONFIG_RETRY_SECONDS = 5.0


class ImageConfigSource(Protocol):
    """Reads what an image runs (its ENTRYPOINT/CMD) from its registry, for ``platform`` (the run's,
    ``RunPlan.platform``; None: the source's default) when the image is a multi-arch index; raises
    ``errors.PodlineError``."""

    async def config(
        self,
        image: str,
        credentials: auths.Credentials | None,
        *,
        platform: imageconfigs.Platform | None = None,
    ) -> stepping.ImageCommand: ...


class Reconciler:
    def __init__(
        self,
        api: kube.Kube,
        config: settings_.Settings,
        *,
        clock: Callable[[], datetime.datetime] | None = None,
        images: ImageConfigSource | None = None,
    ):
        self.api = api
        self.settings = config
        self.images = images
        self.caches = caches_.Caches()
        self.clock = clock or (lambda: datetime.datetime.now(datetime.UTC))
        self.queue = queueing.WorkQueue(self.reconcile, lambda key: key in self.caches.pipelines)
        self.statuses = statuswriting.StatusWriter(api, self.caches, config.status_interval_ms, self.kick)
        self._plans: dict[tuple[str, str, str], Any] = {}
        self._fresh: set[Key] = set()  # read the pod from the API, not the cache, on the next reconcile
        self._config_waits: dict[tuple[Key, str], float] = {}  # since when a registry has not answered

    # --- scheduling of reconciles -------------------------------------------------------------------------

    def kick(self, key: Key) -> None:
        """Reconcile this Pipeline soon; coalesces with a reconcile already running."""
        self.queue.kick(key)

    def kick_later(self, key: Key, delay: float) -> None:
        self.queue.kick_later(key, delay)

    def forget(self, key: Key) -> None:
        """The Pipeline is gone: drop what is kept about it (its pod and Secret go by ownerReferences)."""
        self.caches.pipelines.pop(key, None)
        self.statuses.forget(key)
        self.queue.forget(key)
        self._fresh.discard(key)
        for wait in [w for w in self._config_waits if w[0] == key]:
            del self._config_waits[wait]

    def resync(self) -> None:
        """Re-read every unfinished run from the API, not the cache: a watch event that never arrived
        must not leave a step running forever."""
        groups = self._build_groups()
        for key, body in list(self.caches.pipelines.items()):
            phase = (body.get("status") or {}).get("phase")
            run = self.build_view(key, body, groups=groups).run
            if phase not in statuses.TERMINAL_PHASES or (body.get("status") or {}).get("run") != run:
                self._fresh.add(key)
                self.kick(key)

    # --- one reconcile ------------------------------------------------------------------------------------

    async def reconcile(self, key: Key) -> None:
        for _ in range(MAX_CONFLICT_RETRIES):
            body = self.caches.pipelines.get(key)
            if body is None:
                return  # deleted: ownerReferences let the garbage collector remove pod and Secret
            try:
                await self._once(key, body)
                return
            except kube.Conflict:
                metrics.CONFLICTS.inc()
                self._fresh.add(key)
                log.debug("reconcile %s/%s: conflict, reading again", *key)
            except kube.NotFound:  # the pod went away while this reconcile was deciding: decide again
                self._fresh.add(key)
                log.debug("reconcile %s/%s: the pod is gone, reading again", *key)
        self.kick_later(key, 1.0)

    # --- builds: Pipelines ordered by their depends_on (core/builds.py) ---------------------------------------

    def build_view(
        self,
        key: Key,
        body: Mapping[str, Any],
        *,
        groups: Mapping[tuple[str, str], list[Mapping[str, Any]]] | None = None,
    ) -> BuildView:
        """The Pipeline's current run id and, for a build's member, its gate and its peers (``groups``: the
        cached Pipelines by namespace and build, when the caller has them at hand)."""
        build = builds.build_of(body)
        if build is None:
            return BuildView(runs.run_of(body))
        peers = (
            groups.get((key[0], build), [])
            if groups is not None
            else [
                b
                for (ns, _), b in self.caches.pipelines.items()
                if ns == key[0] and builds.build_of(b) == build
            ]
        )
        me = builds.member_of(body)
        members: dict[str, builds.Member] = {}
        for other in peers:
            member = builds.member_of(other)
            members[member.name] = member
        twins = sorted(builds.member_of(b).resource for b in peers if builds.member_of(b).name == me.name)
        members[me.name] = me
        current = builds.current_runs(members)
        gate = builds.gate(me.name, members, current) if me.depends_on else None
        if len(set(twins) | {me.resource}) > 1:
            gate = builds.twins(me.name, sorted(set(twins) | {me.resource}), build)
        return BuildView(current[me.name], gate, me.name, members)

    def _build_groups(self) -> dict[tuple[str, str], list[Mapping[str, Any]]]:
        groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
        for (namespace, _), body in self.caches.pipelines.items():
            build = builds.build_of(body)
            if build is not None:
                groups.setdefault((namespace, build), []).append(body)
        return groups

    def kick_build(self, key: Key, body: Mapping[str, Any], *, only_dependents: bool = False) -> None:
        """Wake the Pipeline's build peers: its dependents (its phase changed), or all (its run id changed)."""
        view = self.build_view(key, body)
        if view.members is None or view.name is None:
            return
        names = (
            builds.dependents(view.name, view.members)
            if only_dependents
            else [m.resource for m in view.members.values() if m.resource != key[1]]
        )
        for name in names:
            self.kick((key[0], name))

    async def _once(self, key: Key, body: Mapping[str, Any]) -> None:
        namespace, _name = key
        meta = body["metadata"]
        notes = meta.get("annotations") or {}
        view = self.build_view(key, body)
        run = view.run
        gate_open = view.gate is None or view.gate.opens
        env = view.gate.env if view.gate is not None and gate_open else ()
        plan = self._plan(body, run, notes, build=view.members is not None, env=env)
        pod_name = plan.pod_name if not isinstance(plan, errors.PodlineError) else None
        pod = self.caches.pods.get((namespace, pod_name)) if pod_name else None
        status = body.get("status") or {}
        pending = self.statuses.pending(key, status.get("run"))
        if pending is not None:
            status = pending  # what this operator decided last and has not written yet
        fresh = key in self._fresh
        self._fresh.discard(key)
        if pod_name and (fresh or pod is None and status.get("run") == run and status.get("podName")):
            pod = await self._live_pod(namespace, pod_name)  # the watch may lag behind, or have missed it
        ended = status.get("run") == run and status.get("phase") in statuses.TERMINAL_PHASES
        start = await self._start_inputs(key, plan, pod, ended=ended, gate_open=gate_open)
        if start is None:
            return  # a registry that may answer soon: asked again later
        credentials, queued, configs = start
        others = [p for p in self.caches.pods_of(meta.get("uid", "")) if p["metadata"]["name"] != pod_name]
        snap = scheduling.Snapshot(
            plan=plan,
            pod=pod,
            now=self.clock(),
            generation=int(meta.get("generation") or 1),
            run=run,
            status=status,
            cancel=notes.get(conventions.ANNOTATION_CANCEL, "").lower() == "true",
            may_start=queued is None,
            queued_because=queued or "",
            credentials=credentials,
            other_pods=others,
            history_limit=self.settings.history_limit,
            archive_wait_seconds=self.settings.archive_wait_seconds if self.settings.archive_url else 0,
            archive=bool(self.settings.archive_url),
            deleting=bool(meta.get("deletionTimestamp")),
            image_configs=configs,
            gate=view.gate,
        )
        decision = await self._decide_and_apply(key, body, pod, snap)
        if (decision.status.phase, decision.status.run) != (status.get("phase"), status.get("run")):
            if view.members is not None:
                self.kick_build(key, body, only_dependents=True)  # at once: the hand-off waits for nothing
            if decision.status.phase is not None and decision.status.phase.is_terminal:
                self.wake_queued()

    async def _start_inputs(
        self, key: Key, plan: Any, pod: Mapping[str, Any] | None, *, ended: bool, gate_open: bool
    ) -> tuple[Any, str | None, Mapping[str, Any]] | None:
        """What starting the run needs, when it has no pod: (its pull credentials, why it must queue or None,
        its images' configs); None while a registry that may answer soon is asked again. A run waiting for its
        build's dependencies reads nothing yet and takes no place in a queue."""
        if pod is not None or not gate_open or isinstance(plan, errors.PodlineError):
            return None, None, {}
        credentials = None
        if plan.pull_secret_name:
            credentials = await self._credentials(key[0], plan.pull_secret_sources)
        queued = self._queued_because(key)
        if queued is not None or ended:
            return credentials, queued, {}
        configs = await self._image_configs(key, plan, credentials)
        return None if configs is None else (credentials, queued, configs)

    async def _decide_and_apply(
        self, key: Key, body: Mapping[str, Any], pod: Mapping[str, Any] | None, snap: scheduling.Snapshot
    ) -> scheduling.Decision:
        decision = scheduling.decide(snap)
        try:
            await self._apply(key, body, pod, decision)
        except kube.Rejected as exc:
            if not decision.create:
                raise
            # The apiserver refuses what the run needs (Pod Security admission, or a rule validation does not
            # know): sending it again cannot succeed, so the run fails, saying why, instead of waiting forever.
            log.warning(
                "%s/%s: the apiserver refused the run's objects: %s",
                key[0],
                body["metadata"].get("name"),
                exc,
            )
            refused = errors.InvalidPipeline.at("", f"the apiserver refused what the run needs: {exc}")
            notes = body["metadata"].get("annotations") or {}
            env = snap.gate.env if snap.gate is not None and snap.gate.opens else ()
            self._plans[_plan_key(body, snap.run, notes, env)] = refused
            decision = scheduling.decide(dataclasses.replace(snap, plan=refused))
            await self._apply(key, body, pod, decision)
        return decision

    def _plan(
        self,
        body: Mapping[str, Any],
        run: str,
        notes: Mapping[str, str],
        *,
        build: bool,
        env: tuple[tuple[str, str], ...],
    ) -> Any:
        cache_key = _plan_key(body, run, notes, env)
        if cache_key in self._plans:
            return self._plans[cache_key]
        plan = runs.plan_of(body, self.settings.policy, run=run if build else None, env=env)
        if len(self._plans) > 4096:
            self._plans.clear()
        self._plans[cache_key] = plan
        return plan

    async def _image_configs(self, key: Key, plan: plans.RunPlan, credentials: Any) -> dict[str, Any] | None:
        """What each image that must say its own command runs, or the error that says why it cannot be read;
        None while a registry that failed in a way that may heal (unreachable, 429, 5xx) is asked again,
        for up to the pull timeout."""
        out: dict[str, Any] = {}
        creds = credentials if isinstance(credentials, auths.Credentials) else None
        for image in plan.needs_image_config():
            if self.images is None:
                out[image] = errors.ImageConfigUnavailable.at(
                    "", f"image {image}: no registry access is configured"
                )
                continue
            try:
                out[image] = await self.images.config(image, creds, platform=plan.platform)
            except errors.PodlineError as exc:
                first = self._config_waits.setdefault((key, image), time.monotonic())
                if getattr(exc, "transient", False) and time.monotonic() - first < plan.pull_timeout_seconds:
                    log.info(
                        "%s/%s: image config of %s not read yet, asking again: %s",
                        *key,
                        image,
                        "; ".join(exc.lines()),
                    )
                    self.kick_later(key, CONFIG_RETRY_SECONDS)
                    return None
                out[image] = exc
            self._config_waits.pop((key, image), None)
        return out

    async def _live_pod(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        try:
            pod = await self.api.get_pod(namespace, name)
        except kube.NotFound:
            self.caches.drop_pod((namespace, name))
            return None
        self.caches.put_pod((namespace, name), pod)
        return pod

    async def _credentials(
        self, namespace: str, names: tuple[str, ...]
    ) -> auths.Credentials | errors.PodlineError:
        sources = []
        missing = []
        for index, secret in enumerate(names):
            try:
                sources.append(await self.api.read_secret(namespace, secret))
            except kube.NotFound:
                missing.append(
                    errors.Problem(
                        f"spec.image_pull_secrets[{index}]",
                        f'Secret "{secret}" not found in namespace "{namespace}"',
                    )
                )
        if missing:
            return errors.MissingSecret(missing)
        try:
            return auths.convert(sources, path="spec.image_pull_secrets")
        except errors.PodlineError as exc:
            return exc

    def _queued_because(self, key: Key) -> str | None:
        """Why the Pipeline's run may not start yet (a concurrency limit), or None."""
        if not self._may_start(key):
            return "operator concurrency limit"
        running = {
            (ns, str(observing.annotations(p).get(conventions.ANNOTATION_PIPELINE_NAME)))
            for (ns, _), p in self.caches.pods.items()
            if _active(p)
        }
        return concurrency.waits_for_a_slot(key, self.caches.pipelines, running)

    def wake_queued(self) -> None:
        """A run ended: the Pipelines queued for a slot may start now."""
        for key, body in list(self.caches.pipelines.items()):
            if (body.get("status") or {}).get("reason") == statuses.Reason.QUEUED:
                self.kick(key)

    def _may_start(self, key: Key) -> bool:
        limit = self.settings.max_running
        if not limit:
            return True
        running = sum(1 for p in self.caches.pods.values() if _active(p))
        slots = limit - running
        if slots <= 0:
            return False
        waiting = sorted(
            (b["metadata"].get("creationTimestamp", ""), k)
            for k, b in self.caches.pipelines.items()
            if (b.get("status") or {}).get("phase") in (None, "Pending")
            and (b.get("status") or {}).get("reason") != statuses.Reason.WAITING  # for its build's pipelines
            and not self._has_pod(k, b)
        )
        return key in [k for _, k in waiting[:slots]]

    def _has_pod(self, key: Key, body: Mapping[str, Any]) -> bool:
        status = body.get("status") or {}
        return bool(status.get("podName")) and (key[0], status["podName"]) in self.caches.pods

    async def _apply(
        self, key: Key, body: Mapping[str, Any], pod: Mapping[str, Any] | None, decision: scheduling.Decision
    ) -> None:
        namespace, name = key
        for manifest in decision.create:
            try:
                created = await self.api.create(manifest)
                if manifest["kind"] == "Pod":
                    self.caches.put_pod((namespace, manifest["metadata"]["name"]), created)
                    metrics.note_created(manifest)
            except kube.Conflict:
                pass  # deterministic names: it exists already, made by us (or an earlier us)
        if decision.pod_patch and pod is not None:
            started = time.monotonic()
            updated = await self.api.patch_pod(namespace, pod["metadata"]["name"], decision.pod_patch)
            self.caches.put_pod((namespace, pod["metadata"]["name"]), updated)
            metrics.note_patch(pod, decision.pod_patch, time.monotonic() - started)
        for pod_name, patch in decision.other_patches:
            try:
                await self.api.patch_pod(namespace, pod_name, patch)
            except kube.NotFound:
                pass
        for pod_name in decision.delete_pods:
            try:
                await self.api.delete_pod(namespace, pod_name)
            except kube.NotFound:
                pass
        # Events before the status that they describe: killed in between, the next reconcile decides the same
        # change again and records its Event again, under the same name (409), so it is neither lost nor doubled.
        for event in decision.events:
            try:
                await self.api.event(
                    body,
                    event.type,
                    event.reason,
                    event.message,
                    name=_event_name(body, decision.status.run or "", event),
                )
            except kube.Conflict:
                pass  # recorded already, by another replica that saw the same change
            except (kube.Transient, kube.NotFound) as exc:
                log.debug("event for %s/%s not recorded: %s", namespace, name, exc)
        await self.statuses.write(key, body, decision.status.to_patch())
        if decision.requeue_after is not None:
            self.kick_later(key, decision.requeue_after)
        if decision.events:
            for event in decision.events:
                log.info("%s/%s: %s: %s", namespace, name, event.reason, event.message)


def _event_name(body: Mapping[str, Any], run: str, event: scheduling.Event) -> str:
    """The same for the same change of the same run, so two replicas that both see it record one Event."""
    meta = body["metadata"]
    digest = hashlib.sha256("/".join((meta.get("uid", ""), run, event.reason, event.message)).encode())
    return f"{meta['name'][:200].rstrip('.-')}.{digest.hexdigest()[:16]}"


def _plan_key(
    body: Mapping[str, Any], run: str, notes: Mapping[str, str], env: tuple[tuple[str, str], ...]
) -> tuple[str, str, str]:
    """What a run's plan depends on besides its spec (the spec is fixed for a run)."""
    uid = body["metadata"].get("uid", "")
    return (
        uid,
        run,
        notes.get(conventions.ANNOTATION_BUILD, "")
        + "|"
        + notes.get(conventions.ANNOTATION_TIMEOUT, "")
        + "|"
        + repr(env),
    )


@dataclasses.dataclass(frozen=True)
class BuildView:
    """A Pipeline's current run id; for a member of a build also its gate (None without depends_on), its
    Drone name and the build's members as the caches show them."""

    run: str
    gate: builds.Gate | None = None
    name: str | None = None
    members: Mapping[str, builds.Member] | None = None


def _active(pod: Mapping[str, Any]) -> bool:
    return not observing.pod_ended(pod) and conventions.ANNOTATION_STOPPED not in observing.annotations(pod)
