#!/usr/bin/env bash
# Installs what one test tier needs. Idempotent: a second run installs and builds nothing.
#   tests/cluster/setup.sh unit   nothing (the unit tests need only the Python environment)
#   tests/cluster/setup.sh api    openssl, lua, chromium + chromium-driver + Go-built etcd, kube-apiserver, kube-controller-manager, kubectl, helm
#   tests/cluster/setup.sh node   the api tier + kube-scheduler, kubelet, kube-proxy and Debian's containerd,
#                                 runc, CNI plugins, docker-registry, skopeo, umoci, busybox-static, htpasswd,
#                                 gcc, nftables; buildah + mmdebstrap, and the operator image built from the
#                                 Dockerfile (tests/cluster/operator_image.py; cached, rebuilt when it changes)
# Debian packages are installed only when missing (apt-get update only then, too); the binaries are built
# from the Go module proxy by build.sh into ${PODLINE_CACHE:-~/.cache/podline} (first build: ~10 minutes
# on 2 cores, plus module downloads); KUBEBUILDER_ASSETS (etcd, kube-apiserver, kubectl) is honoured.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
tier=${1:-node}
t0=$(date +%s)
say() { printf '[setup %s +%ss] %s\n' "$(date +%H:%M:%S)" "$(($(date +%s) - t0))" "$*"; }

api_packages=(openssl ca-certificates lua5.1 lua5.4  # lua: the Argo CD health check test (docs/gitops.md)
  maven openjdk-17-jre-headless)  # s3proxy (Maven Central), the S3-compatible store the archive tests use
# the dashboard's browser tests (tests/dashboard): headless Chromium driven through Debian's chromedriver
api_packages+=(chromium chromium-driver fonts-dejavu-core)
node_packages=(containerd runc containernetworking-plugins docker-registry skopeo umoci busybox-static
  apache2-utils iptables iproute2 gcc libc6-dev nftables buildah mmdebstrap)

case "$tier" in
  unit) say "unit tier: nothing to set up"; exit 0 ;;
  api) packages=("${api_packages[@]}") ;;
  node) packages=("${api_packages[@]}" "${node_packages[@]}") ;;
  *) echo "usage: $0 [unit|api|node]" >&2; exit 2 ;;
esac

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
missing=()
for package in "${packages[@]}"; do installed "$package" || missing+=("$package"); done
if [ ${#missing[@]} -eq 0 ]; then
  say "Debian packages for the $tier tier: all installed"
else
  say "installing Debian packages: ${missing[*]}"
  sudo=()
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "setup.sh: installing packages needs root (or sudo)" >&2; exit 1; }
    sudo=(sudo)
  fi
  # On a machine with systemd these packages start system services (containerd, docker-registry on
  # :5000); the test cluster uses its own containerd socket and registry ports, so they do not collide.
  "${sudo[@]}" apt-get update -q
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  say "packages installed"
fi

if [ "$tier" = node ]; then
  [ "$(id -u)" = 0 ] || say "warning: the node tier runs a kubelet and containerd and needs root"
  if [ ! -d /sys/fs/cgroup/memory ]; then
    say "warning: no cgroup v1 memory hierarchy; the node tier is only set up for cgroup v1 so far"
  fi
fi

say "s3proxy from Maven Central for the archive's S3 tests (a no-op when cached)"
"$here/s3proxy.sh"

say "building the cluster binaries (a no-op when cached)"
"$here/build.sh" "$tier"

if [ "$tier" = node ] && [ -x "$root/.venv/bin/python" ]; then
  say "preparing the test images (placeholder program, busybox, pause)"
  (cd "$root" && .venv/bin/python -c 'from tests.cluster import images; print(images.layout_dir())')
  say "the operator image from the Dockerfile (a no-op when its inputs are unchanged; first build ~3 minutes)"
  (cd "$root" && .venv/bin/python -m tests.cluster.operator_image)
fi
say "the $tier tier is ready; start it with: .venv/bin/python -m tests.cluster up $tier"
