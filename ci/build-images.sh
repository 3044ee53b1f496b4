#!/bin/sh
# Build the Dockerfile's targets (sidecar, analyzer, demo) with podman, as
# localhost/modeltap-<target>:ci, on the base ci/bootstrap-base.sh makes from Debian packages (no
# registry is reachable in CI). Host networking; pip inside the build gets the host's CA bundle
# and pip configuration (a package proxy that re-signs TLS needs both). Layers are cached in
# ci/podman.sh's storage, so a second run rebuilds only what changed.
#   ci/build-images.sh [target...]      default: sidecar analyzer demo
set -eu
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
repo=$(dirname -- "$here")
cache=${MODELTAP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/modeltap}
tag=${MODELTAP_IMAGE_TAG:-ci}
targets=${*:-sidecar analyzer demo}
base=$("$here/bootstrap-base.sh")

# The host's pip settings (/etc/pip.conf, /etc/xdg/pip/pip.conf, PIP_INDEX_URL and friends) as one
# pip.conf for the build, without the host-only paths (find-links, constraint files, file://
# indexes).
mkdir -p "$cache"
python3 - "$cache/pip.conf" <<'PY'
import configparser, os, sys
conf = configparser.ConfigParser()
conf.read(["/etc/xdg/pip/pip.conf", "/etc/pip.conf", os.path.expanduser("~/.config/pip/pip.conf")])
if not conf.has_section("global"):
    conf.add_section("global")
for key in ("index-url", "extra-index-url", "trusted-host", "cert", "timeout"):
    value = os.environ.get("PIP_" + key.upper().replace("-", "_"))
    if value:
        conf.set("global", key, value)
for section in conf.sections():
    for key in ("find-links", "constraint", "requirement"):
        conf.remove_option(section, key)
    # Indexes on the host's disk (file://) are not in the build container.
    for key in ("index-url", "extra-index-url"):
        if conf.has_option(section, key):
            urls = [u for u in conf.get(section, key).split() if not u.startswith("file:")]
            if urls:
                conf.set(section, key, " ".join(urls))
            else:
                conf.remove_option(section, key)
conf.set("global", "cert", "/etc/ssl/certs/ca-certificates.crt")
with open(sys.argv[1], "w") as out:
    conf.write(out)
PY
ca=${MODELTAP_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
revision=$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)

build() {  # build <stage> <tag> <log>
  "$here/podman.sh" build --network host --target "$1" \
    --build-arg PYTHON_IMAGE="$base" --build-arg REVISION="$revision" \
    --volume "$ca:/etc/ssl/certs/ca-certificates.crt:ro" \
    --volume "$cache/pip.conf:/etc/pip.conf:ro" \
    --tag "$2" "$repo" >> "$3" 2>&1 \
    || { tail -40 "$3"; echo "build of $1 failed (log: $3)" >&2; exit 1; }
}

for target in $targets; do
  start=$(date +%s)
  log="$cache/build-$target.log"
  : > "$log"
  # The stages each image is built from are tagged too (localhost/modeltap-cache:<stage>), so
  # the prune below keeps this build's cache and removes only what earlier builds left behind.
  build builder localhost/modeltap-cache:builder "$log"
  build "$target-venv" "localhost/modeltap-cache:$target-venv" "$log"
  build "$target" "localhost/modeltap-$target:$tag" "$log"
  echo "built localhost/modeltap-$target:$tag in $(( $(date +%s) - start )) s"
done
"$here/podman.sh" image prune --force > /dev/null
