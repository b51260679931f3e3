"""The test cluster's certificates and keys, made with the ``openssl`` command line.

One throw-away CA signs everything: the apiserver's and the kubelet's serving certificates and a client
certificate per identity (admin, controller-manager, scheduler, kubelet, apiserver-to-kubelet). Keys are
ECDSA P-256 because they are generated in milliseconds. The service-account signing key pair lets the
apiserver issue TokenRequest tokens.

Which identities exist and what they may do is decided by the tiers (`apitier`, `nodetier`); this module
only turns a subject and a list of names into files.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import pathlib
import subprocess

DAYS = "3650"
CURVE = "prime256v1"


@dataclasses.dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key, both PEM files."""

    cert: pathlib.Path
    key: pathlib.Path


def _openssl(*args: str, stdin: str | None = None) -> None:
    result = subprocess.run(["openssl", *args], input=stdin, check=False, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed: {result.stderr.strip()}")


def _subject(common_name: str, organizations: tuple[str, ...]) -> str:
    return "".join(f"/O={org}" for org in organizations) + f"/CN={common_name}"


def make_ca(directory: pathlib.Path, name: str = "ca") -> KeyPair:
    directory.mkdir(parents=True, exist_ok=True)
    pair = KeyPair(directory / f"{name}.crt", directory / f"{name}.key")
    _openssl(
        "req", "-x509", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", f"ec_paramgen_curve:{CURVE}",
        "-keyout", str(pair.key), "-out", str(pair.cert), "-days", DAYS, "-subj", "/CN=podline-test-ca",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
    )  # fmt: skip
    return pair


def issue(
    ca: KeyPair,
    directory: pathlib.Path,
    name: str,
    *,
    common_name: str,
    organizations: tuple[str, ...] = (),
    hosts: tuple[str, ...] = (),
    client: bool = True,
    server: bool = False,
) -> KeyPair:
    """Sign a leaf certificate for ``common_name``; ``hosts`` (DNS names or IPs) become its SANs."""
    pair = KeyPair(directory / f"{name}.crt", directory / f"{name}.key")
    csr = directory / f"{name}.csr"
    _openssl(
        "req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", f"ec_paramgen_curve:{CURVE}",
        "-keyout", str(pair.key), "-out", str(csr), "-subj", _subject(common_name, organizations),
    )  # fmt: skip
    usages = [u for u, wanted in (("clientAuth", client), ("serverAuth", server)) if wanted]
    extensions = [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature,keyEncipherment",
        f"extendedKeyUsage={','.join(usages)}",
    ]
    if hosts:
        extensions.append("subjectAltName=" + ",".join(_san(h) for h in hosts))
    extfile = directory / f"{name}.ext"
    extfile.write_text("\n".join(extensions) + "\n")
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca.cert), "-CAkey", str(ca.key), "-CAcreateserial",
        "-out", str(pair.cert), "-days", DAYS, "-extfile", str(extfile),
    )  # fmt: skip
    csr.unlink()
    extfile.unlink()
    return pair


def _san(host: str) -> str:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return f"DNS:{host}"
    return f"IP:{host}"


def make_signing_keys(directory: pathlib.Path, name: str = "service-account") -> KeyPair:
    """A key pair for signing service-account tokens (``cert`` is the public key here, not a certificate)."""
    pair = KeyPair(directory / f"{name}.pub", directory / f"{name}.key")
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", f"ec_paramgen_curve:{CURVE}", "-out", str(pair.key))
    _openssl("pkey", "-in", str(pair.key), "-pubout", "-out", str(pair.cert))
    return pair
