#!/usr/bin/env bash
# Build the Docker Compose v2 CLI from the Go module proxy into DEST (default .cache/bin).
#
# Used to check the compose files with Compose's own loader (`docker-compose config`) on
# machines without a Docker engine, such as CI here. `config` never contacts a daemon.
# `go install module@version` refuses this module (its go.mod has exclude directives), so
# the source is fetched with `go mod download` and built in a writable copy.
set -euo pipefail

COMPOSE_VERSION="${COMPOSE_VERSION:-v2.40.3}"
DEST="${1:-.cache/bin}"
WORK="${COMPOSE_BUILD_DIR:-$(pwd)/.cache/compose-build}"

mkdir -p "$DEST"
DEST="$(cd "$DEST" && pwd)"
if [[ -x "$DEST/docker-compose" ]] && [[ "$("$DEST/docker-compose" version --short 2>/dev/null)" == "${COMPOSE_VERSION#v}" ]]; then
  exit 0
fi
if ! command -v go >/dev/null; then
  echo "error: building docker-compose needs Go (https://go.dev/dl/); or put a Compose v2 binary at $DEST/docker-compose" >&2
  exit 1
fi

export GOMODCACHE="$WORK/gomodcache" GOCACHE="$WORK/gocache" CGO_ENABLED=0
export GOFLAGS="-mod=mod -buildvcs=false -modcacherw"  # -modcacherw: `rm -rf .cache` works
echo "Building docker-compose $COMPOSE_VERSION from the Go module proxy (first time: about 2 minutes)..." >&2
source_dir="$(go mod download -json "github.com/docker/compose/v2@$COMPOSE_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
if [[ -z "$source_dir" ]]; then
  echo "error: could not download github.com/docker/compose/v2@$COMPOSE_VERSION from the Go module proxy" >&2
  exit 1
fi
build_dir="$WORK/src-$COMPOSE_VERSION"
rm -rf "$build_dir"
cp -r "$source_dir" "$build_dir"
chmod -R u+w "$build_dir"
(cd "$build_dir" && go build -trimpath \
  -ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=$COMPOSE_VERSION" \
  -o "$DEST/docker-compose.tmp" ./cmd)
mv -f "$DEST/docker-compose.tmp" "$DEST/docker-compose"
rm -rf "$build_dir"
"$DEST/docker-compose" version
