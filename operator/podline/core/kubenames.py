"""Kubernetes' own rules for names, label keys and values, and environment variable names.

What the apiserver would reject in a pod, checked before a run starts so the problem is reported with
its field path (``validation``) instead of as a failed create. Each function returns the reason a value
is invalid, or None; none of them raises.
"""

from __future__ import annotations

import re

DNS1123_SUBDOMAIN_MAX = 253
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_NAME_MAX = 63
MAX_ID = 2**31 - 1  # runAsUser, runAsGroup


def is_dns1123_subdomain(name: str) -> bool:
    return len(name) <= DNS1123_SUBDOMAIN_MAX and bool(_DNS1123_SUBDOMAIN.match(name))


def label_key_problem(key: str) -> str | None:
    """A label or annotation key: an optional DNS subdomain prefix and ``/``, then a name of up to 63."""
    prefix, slash, name = key.rpartition("/")
    if slash and not is_dns1123_subdomain(prefix):
        return f'prefix "{prefix}" must be a lower-case DNS subdomain'
    if len(name) > LABEL_NAME_MAX or not _LABEL_NAME.match(name):
        return "must be up to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
    return None


def label_value_problem(value: str) -> str | None:
    if value and (len(value) > LABEL_NAME_MAX or not _LABEL_NAME.match(value)):
        return (
            f"value \"{value[:80]}\" must be empty or up to 63 letters, digits, '-', '_' or '.', starting and "
            "ending with a letter or digit"
        )
    return None


def env_name_problem(name: str) -> str | None:
    """Printable ASCII without ``=`` (Kubernetes' relaxed rule, on by default since 1.32)."""
    if not name or "=" in name or not name.isascii() or not name.isprintable():
        return "is not a valid environment variable name"
    return None


def id_problem(value: int | str) -> str | None:
    text = str(value)
    if not text.isdigit() or not text.isascii():
        return f'must be a numeric id on Kubernetes, not "{value}"'
    if int(text) > MAX_ID:
        return f"must be at most {MAX_ID}"
    return None
