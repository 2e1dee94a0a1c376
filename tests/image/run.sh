#!/usr/bin/env bash
# make test-image: build ops/Dockerfile with podman (or Docker where that is what the
# machine has) and run the image as docs/container.md says (tests/image/test_image.py):
#   a. one container with the embedded Redis: a job, a restart and a recreate that keep
#      the job list, a backup restored into a new volume, a clean stop;
#   b. the app and worker replicas on an external Redis with a password and a token; a
#      replica stopped mid-job, whose job another replica finishes;
#   c. ops/compose.yaml's redis, app and workers (deploy.replicas) through the engine's
#      API socket, health checks honoured, and `compose down` leaving nothing behind.
#
# What podman 4.3 from Debian needs on a machine like ours lives here, not in the docs:
# a private containers.conf (ulimits capped at this host's hard limits, cgroupfs, runc,
# netavark with aardvark-dns, catatonit for --init), and the API service in a network
# namespace of its own. Podman 4.3 runs health checks from systemd timers, which such a
# machine lacks: the tests run them by hand (`podman healthcheck run`).
#
# Base images: when NODE_IMAGE/PYTHON_IMAGE (the Dockerfile's ARGs) are neither present
# nor pullable, tests/image/bases.sh makes them from Debian packages and they are kept
# for later runs; so is the stand-in for compose's redis:7-alpine (Debian's redis-server).
set -euo pipefail
cd "$(dirname "$0")/../.."
here=tests/image
image=${MYSPINBOT_TEST_IMAGE:-localhost/myspinbot:test}
node_image=docker.io/library/node:20-bookworm-slim
python_image=docker.io/library/python:3.11-slim-bookworm
redis_image=docker.io/library/redis:7-alpine
work=$(mktemp -d /tmp/myspinbot-image.XXXXXX)
say() { echo "test-image: $*" >&2; }

# ------------------------------------------------------------------- the engine
if command -v podman >/dev/null; then
  engine=podman
elif command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  engine=docker
else
  say "no container engine: apt-get install podman netavark aardvark-dns catatonit runc iptables iproute2 debootstrap"
  exit 1
fi

cleanup() {
  if [ -n "${service_pid:-}" ]; then kill "$service_pid" 2>/dev/null || true; wait "$service_pid" 2>/dev/null || true; fi
  if [ -n "${netns:-}" ]; then ip netns delete "$netns" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

build_flags=()
if [ "$engine" = podman ]; then
  for tool in runc conmon iptables; do
    command -v "$tool" >/dev/null || { say "podman needs $tool here (apt-get install $tool)"; exit 1; }
  done
  for helper in netavark aardvark-dns catatonit; do
    [ -x /usr/lib/podman/$helper ] || [ -x /usr/libexec/podman/$helper ] || {
      say "podman needs $helper here (apt-get install $helper)"
      exit 1
    }
  done
  # Containers may not raise a limit above the host's hard one (no CAP_SYS_RESOURCE
  # here), and runc refuses an nproc above the kernel's pid_max.
  nofile=$(ulimit -Hn)
  nproc=$(ulimit -Hu)
  pid_max=$(cat /proc/sys/kernel/pid_max)
  [ "$nproc" = unlimited ] || [ "$nproc" -gt "$pid_max" ] && nproc=$pid_max
  [ "$nofile" = unlimited ] && nofile=1048576
  cat >"$work/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
init_path = "$(ls /usr/libexec/podman/catatonit /usr/lib/podman/catatonit 2>/dev/null | head -1)"
[engine]
helper_binaries_dir = ["/usr/lib/podman", "/usr/libexec/podman"]
cgroup_manager = "cgroupfs"
runtime = "runc"
events_logger = "file"
[network]
network_backend = "netavark"
EOF
  export CONTAINERS_CONF=$work/containers.conf
  build_flags=(--format docker --ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc")
fi
say "engine: $($engine --version)"

# ------------------------------------------------------------------ base images
have() { $engine image inspect "$1" >/dev/null 2>&1; }
pullable() { timeout 60 $engine pull -q "$1" >/dev/null 2>&1; }
made=()
for base in "$node_image" "$python_image"; do
  have "$base" || pullable "$base" || made+=("$base")
done
if [ ${#made[@]} -gt 0 ]; then
  say "no registry answers for ${made[*]}: making them from Debian packages (bookworm minbase)"
  $here/bases.sh "$engine" "$node_image" "$python_image"
fi
for base in "$node_image" "$python_image"; do
  [ "$($engine image inspect -f '{{index .Config.Labels "org.myspinbot.base"}}' "$base")" = debian ] &&
    say "base $base: made from Debian packages here (sizes differ from the official image)"
done
if ! have "$redis_image" && ! pullable "$redis_image"; then
  say "no registry answers for $redis_image: a stand-in with Debian's redis-server, tagged as it"
  $engine build "${build_flags[@]}" --build-arg "BASE=$python_image" \
    -t "$redis_image" -f $here/redis.Containerfile $here >&2
fi

# ------------------------------------------------------------------------ build
started=$(date +%s)
$engine build "${build_flags[@]}" -f ops/Dockerfile -t "$image" . >&2
built=$(date +%s)
size=$($engine image inspect -f '{{.Size}}' "$image")
say "built $image in $((built - started)) s: $((size / 1000000)) MB"

# ------------------------------------------------- the API socket for compose
socket=
if [ "$engine" = podman ]; then
  # The API service in a network namespace of its own: the networks compose creates
  # (their bridges, aardvark-dns) stay out of the host's. `nsenter --net=`, since
  # `ip netns exec` remounts /sys and runc then finds no cgroups.
  netns=myspinbot-test-$$
  ip netns add "$netns"
  ip -n "$netns" link set lo up
  socket=$work/podman.sock
  nsenter --net="/run/netns/$netns" podman system service --time=0 "unix://$socket" \
    >"$work/service.log" 2>&1 &
  service_pid=$!
  for _ in $(seq 100); do [ -S "$socket" ] && break; sleep 0.1; done
  [ -S "$socket" ] || { cat "$work/service.log" >&2; say "podman's API service did not start"; exit 1; }
  socket=unix://$socket
elif [ -S /var/run/docker.sock ]; then
  socket=unix:///var/run/docker.sock
fi

# ------------------------------------------------------------------------ tests
MYSPINBOT_TEST_IMAGE=$image MYSPINBOT_TEST_ENGINE=$engine MYSPINBOT_TEST_ENGINE_HOST=$socket \
  .venv/bin/python -m pytest -p no:cacheprovider -v $here "$@"
say "image $image: $((size / 1000000)) MB, built in $((built - started)) s; whole run $(($(date +%s) - started)) s after the bases"
