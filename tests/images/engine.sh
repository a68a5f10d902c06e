#!/usr/bin/env bash
# Make a Docker engine usable for the Docker tests, or say exactly why it cannot be.
#
#   tests/images/engine.sh      (make test-docker and .ci/run call it)
#
# Engine already answering: nothing to do. Otherwise, as root on Debian: install Debian's
# docker.io (and mmdebstrap, which builds the test images' base) if missing, start dockerd
# (systemd if it runs, else in the background with its log in /var/log/dockerd.log), and
# wait for it with a deadline. Anyone else gets the reason and what to do.
set -euo pipefail

deadline_s="${DOCKER_ENGINE_TIMEOUT:-60}"

engine_answers() { docker info >/dev/null 2>&1; }

need_packages=()
command -v mmdebstrap >/dev/null 2>&1 || need_packages+=(mmdebstrap)
if ! engine_answers && ! command -v dockerd >/dev/null 2>&1; then
  need_packages+=(docker.io)
fi

if [[ ${#need_packages[@]} -gt 0 ]]; then
  if [[ $EUID -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    echo "error: ${need_packages[*]} missing, and this script installs packages only as root on" \
      "Debian. Install Docker Engine (https://docs.docker.com/engine/install/) and mmdebstrap," \
      "then rerun." >&2
    exit 1
  fi
  echo "Installing ${need_packages[*]} (Debian packages)..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${need_packages[@]}" >/dev/null
fi

if ! engine_answers; then
  if [[ $EUID -ne 0 ]]; then
    echo "error: the Docker engine is not running and only root can start it here." \
      "Start it (e.g. \`sudo systemctl start docker\`) or ask for access to its socket." >&2
    exit 1
  fi
  if [[ -d /run/systemd/system ]]; then
    systemctl start docker
  else
    nohup dockerd >>/var/log/dockerd.log 2>&1 &
  fi
  end=$((SECONDS + deadline_s))
  until engine_answers; do
    if ((SECONDS >= end)); then
      echo "error: dockerd did not answer within ${deadline_s}s. Last lines of its log:" >&2
      tail -n 20 /var/log/dockerd.log >&2 2>/dev/null || true
      exit 1
    fi
    sleep 0.5 # poll interval, bounded by the deadline above
  done
fi
echo "Docker engine: running ($(docker info --format '{{.ServerVersion}}'))."
