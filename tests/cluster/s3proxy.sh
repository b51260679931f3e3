#!/usr/bin/env bash
# Fetches s3proxy (Apache-2.0; an S3 API over a local directory) from Maven Central with Maven's own client,
# into ${PODLINE_CACHE:-~/.cache/podline}/s3proxy/s3proxy-<version>.jar (the jar with its dependencies).
# The archive's tests run it on a loopback port (tests/cluster/s3proxy.py). Idempotent.
set -euo pipefail
version=$(sed -n 's/^S3PROXY_VERSION=//p' "$(dirname "${BASH_SOURCE[0]}")/versions.env")
cache=${PODLINE_CACHE:-$HOME/.cache/podline}/s3proxy
jar=$cache/s3proxy-$version.jar
[ -f "$jar" ] && exit 0
mkdir -p "$cache"
repo=$(mktemp -d)
trap 'rm -rf "$repo"' EXIT
mvn -q -B -Dmaven.repo.local="$repo" dependency:get -Dtransitive=false \
  -Dartifact="org.gaul:s3proxy:$version:jar:jar-with-dependencies"
cp "$repo/org/gaul/s3proxy/$version/s3proxy-$version-jar-with-dependencies.jar" "$jar.tmp"
mv "$jar.tmp" "$jar"
