#!/usr/bin/env bash
# Builds the test control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler)
# from the versions pinned in go.mod, into a cache outside the clone keyed by version:
#   ${GYMOPS_CACHE:-~/.cache/gym-operator}/k8s-<version>-etcd-<version>/bin
# Prints that directory. Reuses it when every binary is already there.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
k8s_version="$(awk '$1=="require" && $2=="k8s.io/kubernetes" {print $3}' "$here/go.mod")"
etcd_version="$(awk '$1=="require" && $2=="go.etcd.io/etcd/server/v3" {print $3}' "$here/go.mod")"
cache="${GYMOPS_CACHE:-$HOME/.cache/gym-operator}"
# -r2: the binaries report their release (version ldflags), which helm's kubeVersion check reads.
bin="$cache/k8s-$k8s_version-etcd-$etcd_version-r2/bin"
binaries=(etcd kube-apiserver kube-controller-manager kube-scheduler)

all_present() {
  for b in "${binaries[@]}"; do [[ -x "$bin/$b" ]] || return 1; done
}

if all_present; then
  echo "$bin"
  exit 0
fi

# Build in a scratch copy so the clone never gains build files; etcd's server module has no
# main package, so a two-line one calls its etcdmain.Main. go.mod names the two roots only
# (-mod=mod completes the graph from their go.mod files); the committed go.sum pins the hash of
# every module the build downloads, so a changed module fails the build.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$here/go.mod" "$here/go.sum" "$work/"
mkdir -p "$work/etcd"
cat > "$work/etcd/main.go" <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
mkdir -p "$bin.partial"
start=$SECONDS
(
  cd "$work"
  export GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0
  go build -trimpath -ldflags="-s -w" -o "$bin.partial/etcd" ./etcd
  minor="${k8s_version#v1.}"
  minor="${minor%%.*}"
  version_flags=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    version_flags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    version_flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  for b in kube-apiserver kube-controller-manager kube-scheduler; do
    go build -trimpath -ldflags="-s -w$version_flags" -o "$bin.partial/$b" "k8s.io/kubernetes/cmd/$b"
  done
) >&2
rm -rf "$bin"
mv "$bin.partial" "$bin"
echo "built the control plane in $((SECONDS - start)) s" >&2
echo "$bin"
