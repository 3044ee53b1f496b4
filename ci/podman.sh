#!/bin/sh
# podman with the project's own storage root, runtime directory and containers.conf
# (ci/containers.conf: runc, lowered ulimits, host networking), so CI never touches another
# user's containers or images. Every image-building and pod-testing command goes through it.
set -eu
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
cache=${MODELTAP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/modeltap}
mkdir -p "$cache/podman/root" "$cache/podman/run" "$cache/podman/tmp"
export CONTAINERS_CONF="$here/containers.conf"
export TMPDIR="$cache/podman/tmp"
exec podman --root "$cache/podman/root" --runroot "$cache/podman/run" \
  --tmpdir "$cache/podman/run/libpod" --cgroup-manager cgroupfs --events-backend file "$@"
