#!/usr/bin/env bash
# Makes the two base images ops/Dockerfile builds on from Debian's packages, for machines
# that reach Debian's mirror but no image registry, and tags them as the names the
# Dockerfile's ARGs default to (NODE_IMAGE, PYTHON_IMAGE):
#   python: Debian bookworm minbase + Python 3.11 from Debian, as a venv at /usr/local
#           (so `python` and `pip` are where the official slim image has them);
#   node:   Debian bookworm minbase + the host's installed Node.js (Debian's is 18, the
#           assets need 20).
# Both carry the host's CA certificates, so that pip and npm work in the build behind a
# TLS-inspecting proxy. An image made here has the label org.myspinbot.base=debian and is
# kept for later runs (delete it with `podman rmi` to make it anew).
#
# usage: bases.sh ENGINE NODE_IMAGE PYTHON_IMAGE
set -euo pipefail
engine=$1 node_image=$2 python_image=$3
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
cache=${MYSPINBOT_IMAGE_CACHE:-$HOME/.cache/myspinbot/image}

log() { echo "bases: $*" >&2; }

have_image() { "$engine" image exists "$1" 2>/dev/null || "$engine" image inspect "$1" >/dev/null 2>&1; }

command -v debootstrap >/dev/null || {
  log "debootstrap is missing (apt-get install debootstrap)"
  exit 1
}

# One minbase tree, made once and kept as a tarball: the slow part (about two minutes).
minbase() {
  local tarball=$cache/bookworm-minbase.tar
  if [ ! -s "$tarball" ]; then
    local tree
    tree=$(mktemp -d "$cache/minbase.XXXXXX")
    log "debootstrap --variant=minbase bookworm from $mirror"
    debootstrap --variant=minbase --include=ca-certificates bookworm "$tree" "$mirror" >&2
    tar -C "$tree" -cf "$tarball.part" .
    mv "$tarball.part" "$tarball"
    rm -rf "$tree"
  fi
  echo "$tarball"
}

# Run a shell script inside a fresh copy of the minbase tree (with FILEs copied to its
# root), then import the tree as an image with ENV settings added.
#   make_image NAME ENV SCRIPT [FILE...]
make_image() {
  local name=$1 env=$2 script=$3 tree tarball
  shift 3
  tarball=$(minbase)
  tree=$(mktemp -d "$cache/tree.XXXXXX")
  tar -C "$tree" -xf "$tarball"
  [ $# -eq 0 ] || cp "$@" "$tree/"
  # The host's own CAs (a proxy's among them) next to Debian's bundle.
  cp /usr/local/share/ca-certificates/*.crt "$tree/usr/local/share/ca-certificates/" 2>/dev/null || true
  cp /etc/resolv.conf "$tree/etc/resolv.conf"
  # What debian:bookworm-slim leaves out (documentation, manuals, translations), so that
  # sizes measured here come near those on the official bases.
  printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
    'path-exclude /usr/share/man/*' 'path-exclude /usr/share/info/*' \
    'path-exclude /usr/share/locale/*' >"$tree/etc/dpkg/dpkg.cfg.d/slim"
  find "$tree/usr/share/doc" -type f ! -name copyright -delete
  rm -rf "$tree/usr/share/man/"* "$tree/usr/share/info/"* "$tree/usr/share/locale/"*
  mount -t proc proc "$tree/proc"
  mount --rbind /dev "$tree/dev"
  mount --make-rslave "$tree/dev"
  local rc=0
  chroot "$tree" /bin/bash -euxc "$script" >&2 || rc=$?
  umount -R "$tree/dev"
  umount "$tree/proc"
  if [ "$rc" = 0 ]; then
    : >"$tree/etc/resolv.conf"
    for file in "$@"; do rm -f "$tree/$(basename "$file")"; done
    rm -rf "$tree/var/lib/apt/lists/"* "$tree/var/cache/apt/"*.bin "$tree/var/cache/apt/archives/"*.deb
    local changes=(--change 'LABEL org.myspinbot.base=debian' --change 'CMD ["bash"]')
    # One ENV per --change: `podman import` reads the rest of the line as one value.
    for setting in PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 $env; do
      changes+=(--change "ENV $setting")
    done
    tar -C "$tree" -c . | "$engine" import "${changes[@]}" - "$name" >&2
  fi
  rm -rf "$tree"
  return "$rc"
}

mkdir -p "$cache"

if have_image "$python_image"; then
  log "$python_image: present, kept"
else
  log "$python_image: making it from Debian packages"
  make_image "$python_image" "" '
    export DEBIAN_FRONTEND=noninteractive
    update-ca-certificates
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends python3 python3-venv >/dev/null
    python3 -m venv /usr/local
    /usr/local/bin/pip --version
    apt-get clean'
fi

if have_image "$node_image"; then
  log "$node_image: present, kept"
else
  log "$node_image: making it from Debian packages and the host's installed Node.js"
  # The host's installed Node.js (NodeSource's 20.x on our machines; its package is not
  # downloadable again): node, npm as installed (npm may have updated itself), their links.
  files=$cache/node-files.tar
  tar -C / -cf "$files" usr/bin/node usr/bin/npm usr/bin/npx usr/lib/node_modules/npm
  # Node reads its own CA list, not the system's: it is told about the system's bundle.
  make_image "$node_image" NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt '
    export DEBIAN_FRONTEND=noninteractive
    update-ca-certificates
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends libstdc++6 >/dev/null
    tar -C / -xf /node-files.tar
    node --version && npm --version
    test "$(node -p "process.versions.node.split(\".\")[0]")" -ge 20
    apt-get clean' "$files"
fi
