"""s3proxy: a real S3-compatible server (Apache-2.0, from Maven Central) for the archive's S3 tests.

``tests/cluster/s3proxy.sh`` (run by ``setup.sh``) fetches the jar into the cache; `S3Proxy` runs it on a free
loopback port with the filesystem blob store in a temporary directory, signature v2/v4 authentication with
a test identity, and one bucket (a directory of the blob store). `S3Proxy.env` is what the operator needs:
the standard ``AWS_*`` variables.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import tempfile
import time

from tests.cluster import binaries, probes

VERSION = binaries.VERSIONS["S3PROXY_VERSION"]
IDENTITY = "podline-test"
BUCKET = "podline-archive"


class Missing(RuntimeError):
    """s3proxy (or Java) is not installed."""


def jar() -> pathlib.Path:
    path = binaries.cache_dir() / "s3proxy" / f"s3proxy-{VERSION}.jar"
    if not path.is_file():
        raise Missing(f"s3proxy {VERSION} is not fetched: run tests/cluster/s3proxy.sh (setup.sh api does)")
    if not shutil.which("java"):
        raise Missing("s3proxy needs Java 17: apt-get install openjdk-17-jre-headless (setup.sh api does)")
    return path


class S3Proxy:
    def __init__(self) -> None:
        self.port = probes.free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.credential = f"secret-{os.urandom(6).hex()}"
        self._dir = pathlib.Path(tempfile.mkdtemp(prefix="podline-s3proxy-"))
        self.blobs = self._dir / "blobs"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": IDENTITY, "AWS_SECRET_ACCESS_KEY": self.credential,
                "AWS_ENDPOINT_URL": self.endpoint, "AWS_REGION": "us-east-1"}  # fmt: skip

    def start(self) -> S3Proxy:
        path = jar()
        (self.blobs / BUCKET).mkdir(
            parents=True, exist_ok=True
        )  # a bucket of the filesystem blob store: a directory
        conf = self._dir / "s3proxy.conf"
        conf.write_text(
            f"s3proxy.endpoint={self.endpoint}\ns3proxy.authorization=aws-v2-or-v4\n"
            f"s3proxy.identity={IDENTITY}\ns3proxy.credential={self.credential}\n"
            f"jclouds.provider=filesystem-nio2\njclouds.filesystem.basedir={self.blobs}\n"
            f"jclouds.identity={IDENTITY}\njclouds.credential={self.credential}\n"
        )
        log = (self._dir / "s3proxy.log").open("ab")
        self._process = subprocess.Popen(
            ["java", "-Xmx256m", "-cp", str(path), "org.gaul.s3proxy.Main", "--properties", str(conf)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 90  # the JVM starts in ~5 s on a quiet machine
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"s3proxy exited: {self.log()[-2000:]}")
            if probes.http_status(self.endpoint + "/") is not None:  # any answer (403: not signed)
                return self
            time.sleep(0.2)
        raise RuntimeError(f"s3proxy did not listen on {self.endpoint} within 90 s: {self.log()[-2000:]}")

    def log(self) -> str:
        path = self._dir / "s3proxy.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def pause(self) -> None:
        """The server down, its objects kept: ``start`` brings it back on the same port with them."""
        if self._process and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def stop(self) -> None:
        self.pause()
        shutil.rmtree(self._dir, ignore_errors=True)
