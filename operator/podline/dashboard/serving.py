"""``podline dashboard``: log in, start the shared watch and the web server, run until interrupted.

Credentials are the operator's way (``shell.kube.login``): a pod's ServiceAccount in the chart, else the
kubeconfig (``KUBECONFIG``), so a user on their machine sees and does what their RBAC allows. Without
``--namespace``, every namespace is watched when the credentials may list Pipelines cluster-wide, else the
kubeconfig context's namespace. Problems that stop it (no credentials, a port in use) are one line each.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
import sys
from dataclasses import dataclass

import kopf
import yaml
from aiohttp import web

from podline.core import archivepaths
from podline.dashboard import archived, kubeapi, logsources, server, watching
from podline.shell import archiving, kube

log = logging.getLogger("podline.dashboard")


@dataclass(frozen=True)
class Config:
    address: str = "127.0.0.1"
    port: int = 8080
    namespaces: tuple[str, ...] = ()
    read_only: bool = False
    allowed_hosts: tuple[str, ...] = ()
    archive: str = (
        ""  # the operator's archive (file:///dir, s3://bucket/prefix): logs of runs whose pods are gone
    )
    operator: str = ""  # without archive: the operator's archive Service (NS/SERVICE[:PORT]), via the API


class StartError(Exception):
    """Why the dashboard cannot start, in words."""


def allowed_hosts(config: Config) -> tuple[str, ...]:
    """The Host names answered: those given; on loopback without any, only loopback names (so a page
    elsewhere cannot rebind its name to this server); else any."""
    if config.allowed_hosts:
        return config.allowed_hosts
    if config.address in ("127.0.0.1", "localhost", "::1"):
        return server.LOOPBACK_HOSTS
    return ()


async def _namespaces(
    api: kubeapi.UserApi, config: Config, default: str | None, *, attempts: int = 5
) -> tuple[str, ...]:
    """The namespaces to show; a failing apiserver (starting, overloaded) is asked again a few times."""
    if config.namespaces:
        return config.namespaces
    for attempt in range(attempts):
        try:
            await api.list_pipelines(None)
            return ()
        except kubeapi.Forbidden:
            fallback = default or "default"
            log.warning("may not list Pipelines in all namespaces; showing %r (-n chooses)", fallback)
            return (fallback,)
        except (kube.Transient, kube.NotFound) as exc:
            if attempt == attempts - 1:
                raise StartError(f"cannot read Pipelines: {exc}") from None
            await asyncio.sleep(1.0 + attempt)
    return ()


@dataclass(frozen=True)
class Sources:
    """Where a page's logs and a Pipeline's archived runs are read."""

    logs: logsources.LogSource  # the run's pod first, then the archive
    archive: logsources.LogSource  # the archive alone: a run no longer in the Pipeline's status
    records: archived.Records  # the Pipeline's archived runs


def _sources(api: kubeapi.UserApi, archive: str, operator: str = "") -> Sources:
    """The run's pod first; then the archive (a run whose pod is gone): the store ``--archive`` names, else
    the operator's archive through the API server (``--operator``, default the chart's Service). The archived
    runs come from the same place."""
    try:
        if archive:
            store = archiving.open_store(archive)
            later: logsources.LogSource = logsources.ArchiveLogs(store)
            found: archived.Records = archived.StoreRecords(store)
        else:
            target = archivepaths.parse_operator(operator or archivepaths.DEFAULT_OPERATOR)
            later = logsources.OperatorArchiveLogs(api, target)
            found = archived.OperatorRecords(api, target)
    except ValueError as exc:
        raise StartError(f"--{'archive' if archive else 'operator'}: {exc}") from None
    return Sources(logsources.FirstOf([logsources.PodLogs(api), later]), later, found)


async def run(config: Config, *, started: asyncio.Event | None = None) -> None:
    connect = functools.partial(kube.login, settings=kopf.OperatorSettings(), logger=log)
    try:
        info = connect()
    except kopf.LoginError as exc:
        raise StartError(str(exc)) from None
    except OSError as exc:
        raise StartError(f"cannot read the kubeconfig {exc.filename or ''}: {exc.strerror}") from None
    except (
        yaml.YAMLError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
    ) as exc:  # never its text: credentials
        raise StartError(
            f"cannot use the kubeconfig ({type(exc).__name__}): check it with `kubectl config view`"
        ) from None
    api = kubeapi.UserApi(connect)
    try:
        sources = _sources(api, config.archive, config.operator)
        hub = watching.Hub(api, await _namespaces(api, config, info.default_namespace))
        options = server.Options(read_only=config.read_only, allowed_hosts=allowed_hosts(config))
        ctx = server.Context(
            api=api,
            hub=hub,
            logs=sources.logs,
            options=options,
            archive=sources.archive,
            past=archived.Cache(sources.records),
        )
        runner = web.AppRunner(server.make_app(ctx), access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, config.address, config.port).start()
        except OSError as exc:
            raise StartError(f"cannot listen on {config.address}:{config.port}: {exc.strerror}") from None
        host = f"[{config.address}]" if ":" in config.address else config.address
        where = ", ".join(ns or "all namespaces" for ns in hub.namespaces)
        print(f"podline dashboard: http://{host}:{config.port}/ ({where})", flush=True)
        watch = asyncio.create_task(hub.run())
        if started is not None:
            started.set()
        try:
            await _until_stopped()
        finally:
            watch.cancel()
            await runner.cleanup()
    finally:
        await api.close()


async def _until_stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def main(config: Config) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    logging.getLogger("kopf").setLevel(logging.WARNING)
    try:
        asyncio.run(run(config))
    except StartError as exc:
        print(f"podline: {exc}", file=sys.stderr)
        return 1
    return 0
