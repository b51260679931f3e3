"""The paths of the operator's read-only archive endpoint, and how a client reaches it.

The operator serves its archive (``shell.archiveserving``) under ``/v1/runs/``:

    /v1/runs/<namespace>/<pipeline>                     the Pipeline's archived runs' records, newest first
    /v1/runs/<namespace>/<pipeline>/<run>               one run's record.json
    /v1/runs/<namespace>/<pipeline>/<run>/<container>   one step's log (text)

``parse`` turns the part after ``/v1/runs/`` into a `Query`, or says which part is bad: every part must be a
Kubernetes name (namespace, run, container: DNS-1123 labels; Pipeline: a DNS-1123 subdomain, as its object
name), so no part can be empty, ``.``, ``..`` or hold a ``/``: a request never leaves ``<namespace>/<pipeline>/``
in the store. Users reach it through the API server's service proxy; ``proxy_path`` builds that path and
``Operator`` names the Service (``--operator``/``PODLINE_OPERATOR``, default the chart's). Pure: no I/O.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from podline.core import kubenames

PREFIX = "/v1/runs/"
PORT_NAME = "archive"  # the Service port's name, in the chart and in the proxy path
DEFAULT_OPERATOR = "podline-system/podline-archive"  # the chart installed as README says: release podline
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_MAX = 63


@dataclass(frozen=True)
class Query:
    """What a request asks for: the runs of a Pipeline, one run's record, or one step's log."""

    namespace: str
    pipeline: str
    run: str | None = None
    container: str | None = None


@dataclass(frozen=True)
class BadPath:
    """Why a path is refused (400), naming the part."""

    problem: str


def is_label(name: str) -> bool:
    return len(name) <= LABEL_MAX and bool(_LABEL.match(name))


def _problem(what: str, value: str, ok: bool, rule: str) -> str | None:
    if ok:
        return None
    shown = f'"{value}"' if len(value) <= 80 and value.isprintable() else repr(value[:80])
    return f"{what} {shown} is not a Kubernetes name ({rule})"


def problems(query: Query) -> list[str]:
    """Each part of ``query`` that is not a valid name, said."""
    label = "a DNS-1123 label: up to 63 of a-z, 0-9 and '-', starting and ending with a letter or digit"
    subdomain = "a DNS-1123 subdomain: labels joined by '.', up to 253 characters"
    found = [
        _problem("namespace", query.namespace, is_label(query.namespace), label),
        _problem("pipeline", query.pipeline, kubenames.is_dns1123_subdomain(query.pipeline), subdomain),
    ]
    if query.run is not None:
        found.append(_problem("run", query.run, is_label(query.run), label))
    if query.container is not None:
        found.append(_problem("step container", query.container, is_label(query.container), label))
    return [p for p in found if p]


def parse(tail: str) -> Query | BadPath:
    """The query of a path after ``/v1/runs/`` (percent-decoded per part), or why it is refused."""
    parts = [urllib.parse.unquote(p) for p in tail.split("/")]
    if parts and parts[-1] == "":  # a trailing slash
        parts.pop()
    if not 2 <= len(parts) <= 4:
        return BadPath(
            "the path is /v1/runs/NAMESPACE/PIPELINE[/RUN[/CONTAINER]]: "
            f"{len(parts)} part{'' if len(parts) == 1 else 's'} given"
        )
    query = Query(*parts)
    said = problems(query)
    return BadPath("; ".join(said)) if said else query


def path_of(query: Query) -> str:
    """The endpoint's path for ``query`` (the inverse of ``parse``)."""
    parts = [query.namespace, query.pipeline, query.run, query.container]
    return PREFIX + "/".join(urllib.parse.quote(p, safe="") for p in parts if p is not None)


@dataclass(frozen=True)
class Operator:
    """The operator's archive Service: where the API server's service proxy sends a user's request."""

    namespace: str
    service: str
    port: str = PORT_NAME

    def proxy_path(self, query: Query) -> str:
        name = urllib.parse.quote(f"{self.service}:{self.port}", safe=":")
        return f"/api/v1/namespaces/{self.namespace}/services/{name}/proxy{path_of(query)}"

    def __str__(self) -> str:
        return f"{self.namespace}/{self.service}" + ("" if self.port == PORT_NAME else f":{self.port}")


def parse_operator(text: str) -> Operator:
    """``NAMESPACE/SERVICE[:PORT]`` (``--operator``, ``PODLINE_OPERATOR``); ValueError says what is wrong."""
    namespace, slash, rest = text.strip().partition("/")
    service, colon, port = rest.partition(":")
    if not slash or not is_label(namespace) or not is_label(service) or (colon and not is_label(port)):
        raise ValueError(
            f'"{text}" is not NAMESPACE/SERVICE[:PORT] (e.g. {DEFAULT_OPERATOR}): the operator\'s archive Service'
        )
    return Operator(namespace, service, port or PORT_NAME)


def newest_first(found: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Run records, the latest finished first (unfinished or unknown times last, by run)."""
    return sorted(found, key=lambda r: (-(r.get("finishedAt") or 0), str(r.get("run", ""))))


def reader_role(operator: Operator) -> str:
    """The chart's Role that lets a user read the archive (``<fullname>-archive-reader``)."""
    return f"{operator.service}-reader"


def explain(operator: Operator, status: int, body: str) -> str:
    """Why a read through the service proxy failed, for a person: from the operator's own answer (a JSON
    ``error``) or the API server's (a ``Status``: forbidden, no such Service, no endpoints)."""
    try:
        parsed = json.loads(body) if body.strip().startswith("{") else {}
    except ValueError:
        parsed = {}
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
        return str(parsed["error"])  # the operator answered: a bad name (400), not archived (404), store down
    message = str(parsed.get("message") or body.strip()[:200]) if isinstance(parsed, dict) else body[:200]
    where = f"Service {operator.namespace}/{operator.service}"
    if status == 403:
        return (
            f"may not read the operator's archive: that needs `get` on `services/proxy` of {where} "
            f"(port {operator.port}); the chart's Role {reader_role(operator)} grants it: kubectl create "
            f"rolebinding NAME -n {operator.namespace} --role={reader_role(operator)} --user=YOU "
            f"(the API server said: {message})"
        )
    if status == 404:
        return (
            f"the operator's archive {where} was not found ({message}): is podline installed there with "
            f"archive.serve.enabled? Name another with --operator NAMESPACE/SERVICE or PODLINE_OPERATOR, or read "
            "a store directly with --archive URL"
        )
    if status in (502, 503):
        return (
            f"the operator behind {where} does not answer ({message}): is it running, with its archive "
            "served (PODLINE_ARCHIVE_PORT)?"
        )
    return f"reading the operator's archive through {where} failed: {status} {message}"
