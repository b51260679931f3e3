"""Readiness probes: small HTTP(S) requests to loopback endpoints that answer "is it up yet?".

Probes never raise on connection errors; they return None, so `components.poll` simply tries again.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import urllib.parse
from typing import Any

from tests.cluster import pki


def tls_context(ca: pki.KeyPair, client: pki.KeyPair | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca.cert))
    if client is not None:
        context.load_cert_chain(str(client.cert), str(client.key))
    return context


def http_status(url: str, context: ssl.SSLContext | None = None, timeout: float = 2.0) -> int | None:
    """GET ``url`` and return the status code, or None if nothing answered."""
    answer = http_get(url, context, timeout)
    return None if answer is None else answer[0]


def http_json(url: str, context: ssl.SSLContext | None = None, timeout: float = 2.0) -> Any:
    """GET ``url`` and return the decoded JSON body of a 200 answer, or None."""
    answer = http_get(url, context, timeout)
    if answer is None or answer[0] != 200:
        return None
    return json.loads(answer[1])


def unverified_tls() -> ssl.SSLContext:
    """For health endpoints served with a self-signed certificate (scheduler); loopback only."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def http_get(
    url: str, context: ssl.SSLContext | None = None, timeout: float = 2.0
) -> tuple[int, bytes] | None:
    """GET ``url``: (status, body), or None if nothing answered."""
    parts = urllib.parse.urlsplit(url)
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(parts.netloc, timeout=timeout, context=context)
    else:
        connection = http.client.HTTPConnection(parts.netloc, timeout=timeout)
    try:
        connection.request("GET", parts.path or "/")
        response = connection.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the usual bind-to-0 trick; fine for a test machine)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
