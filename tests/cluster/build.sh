#!/usr/bin/env bash
# Builds every binary the test cluster needs from the Go module proxy, into a cache outside the repo:
#   ${PODLINE_CACHE:-~/.cache/podline}/bin/<component>-<version>/
# A second run finds the binaries and does nothing. Versions live in tests/cluster/versions.env.
# Programs found in $KUBEBUILDER_ASSETS (the envtest convention: etcd, kube-apiserver, kubectl) are not built.
# Usage: tests/cluster/build.sh [api|node|all]
#   api: etcd + kube-apiserver + kube-controller-manager + kubectl + helm; node (= all): also scheduler,
#   kubelet and kube-proxy
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"
tier=${1:-all}
cache=${PODLINE_CACHE:-$HOME/.cache/podline}
export GOFLAGS=-mod=mod
export CGO_ENABLED=${CGO_ENABLED:-0}

kdir=$cache/bin/kubernetes-$KUBERNETES_VERSION
edir=$cache/bin/etcd-$ETCD_VERSION
hdir=$cache/bin/helm-$HELM_VERSION
mkdir -p "$kdir" "$edir" "$hdir"

step() { printf '[build %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
provided() { [ -n "${KUBEBUILDER_ASSETS:-}" ] && [ -x "$KUBEBUILDER_ASSETS/$1" ]; }

case "$tier" in
  api | node | all) ;;
  *) echo "usage: $0 [api|node|all]" >&2; exit 2 ;;
esac
if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then PATH=$PATH:/usr/local/go/bin; fi
command -v go >/dev/null || { echo "build.sh: needs Go >= 1.24 on PATH (https://go.dev/doc/install)" >&2; exit 1; }

build_etcd() {
  if provided etcd; then step "etcd: from KUBEBUILDER_ASSETS ($KUBEBUILDER_ASSETS)"; return; fi
  if [ -x "$edir/etcd" ]; then step "etcd $ETCD_VERSION: cached"; return; fi
  step "etcd $ETCD_VERSION: building"
  (cd "$here/gomod/etcd" && go build -trimpath -ldflags '-s -w' -o "$edir/etcd.tmp" . && mv "$edir/etcd.tmp" "$edir/etcd")
  step "etcd: done"
}

build_kube() {
  local missing=()
  for c in "$@"; do
    if provided "$c"; then step "$c: from KUBEBUILDER_ASSETS ($KUBEBUILDER_ASSETS)"; continue; fi
    [ -x "$kdir/$c" ] || missing+=("$c")
  done
  if [ ${#missing[@]} -eq 0 ]; then step "kubernetes $KUBERNETES_VERSION ($*): cached or provided"; return; fi
  local minor=${KUBERNETES_VERSION#v1.}; minor=${minor%%.*}
  local ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=$KUBERNETES_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ld="$ld -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  local pkgs=() c
  for c in "${missing[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
  step "kubernetes $KUBERNETES_VERSION: building ${missing[*]} (the first build of all takes about 10 minutes on 2 cores)"
  local tmp; tmp=$(mktemp -d "$kdir/.tmp.XXXX")
  (cd "$here/gomod/kubernetes" && go build -trimpath -ldflags "$ld" -o "$tmp/" "${pkgs[@]}")
  for c in "${missing[@]}"; do mv "$tmp/$c" "$kdir/$c"; done
  rmdir "$tmp"
  step "kubernetes: done ${missing[*]}"
}

build_helm() {
  if [ -x "$hdir/helm" ]; then step "helm $HELM_VERSION: cached"; return; fi
  step "helm $HELM_VERSION: building"
  GOBIN="$hdir" GOFLAGS= go install -trimpath -ldflags '-s -w' "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  step "helm: done"
}

build_etcd
build_kube kube-apiserver
build_kube kube-controller-manager kubectl
build_helm
if [ "$tier" != api ]; then
  build_kube kube-scheduler kubelet kube-proxy
fi
step "all binaries present under $cache/bin"
