#!/bin/sh
# Build a base image equal in content to python:3.11-slim-bookworm from Debian packages (no
# registry is reachable in CI): debootstrap's minbase of bookworm plus Debian's Python 3.11 with
# venv and headers (mypyc compiles against them), imported into ci/podman.sh's storage as
# $MODELTAP_BASE_IMAGE. The root filesystem is cached as a tarball; a fresh machine builds it.
set -eu
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
cache=${MODELTAP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/modeltap}
image=${MODELTAP_BASE_IMAGE:-localhost/modeltap-ci-base:bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
packages=python3,python3-venv,python3-dev,python-is-python3,ca-certificates,netbase,tzdata
# What the cached root filesystem was made with: a change to the script's recipe bumps it.
recipe="$packages;slim-1"
tarball="$cache/base-bookworm-python3.tar"
stamp="$tarball.packages"
if [ ! -s "$tarball" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$recipe" ]; then
  mkdir -p "$cache"
  root=$(mktemp -d "$cache/rootfs.XXXXXX")
  trap 'rm -rf "$root"' EXIT
  echo "debootstrap: bookworm minbase + $packages" >&2
  debootstrap --variant=minbase --include="$packages" bookworm "$root" "$mirror" \
    > "$cache/debootstrap.log" 2>&1 || { tail -30 "$cache/debootstrap.log"; exit 1; }
  # As debian:bookworm-slim, which the official image starts from: no documentation, manuals or
  # translations (dpkg keeps them out of what the builder installs later too), no apt lists or
  # caches.
  cat > "$root/etc/dpkg/dpkg.cfg.d/docker-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
CFG
  find "$root/usr/share/doc" -type f ! -name copyright -delete
  rm -rf "$root"/usr/share/man/* "$root"/usr/share/groff/* "$root"/usr/share/info/* \
    "$root"/usr/share/lintian/* "$root"/usr/share/linda/* "$root"/usr/share/locale/* \
    "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
  tar -C "$root" --numeric-owner -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  echo "$recipe" > "$stamp"
fi
# The official image's configuration; the label says which root filesystem and configuration an
# imported image has, so a change to either re-imports.
path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
version=$(printf "%s\n" "$packages" "$path" "$(sha256sum < "$tarball")" | sha256sum | cut -c1-16)
current=$("$here/podman.sh" image inspect --format '{{ index .Labels "org.modeltap.ci-base" }}' \
  "$image" 2>/dev/null || true)
if [ "$current" != "$version" ]; then
  "$here/podman.sh" import --change "ENV PATH=$path" --change 'ENV LANG=C.UTF-8' \
    --change "LABEL org.modeltap.ci-base=$version" --change 'CMD ["python3"]' \
    "$tarball" "$image" > /dev/null
fi
echo "$image"
