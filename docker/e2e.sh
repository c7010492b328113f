#!/usr/bin/env bash
# make e2e: build the Strata image, bring up docker/docker-compose.yml
# (3 controllers, 3 segment stores, an S3 server) and exit with the result of
# its e2e service, printing "1 passed, 0 failed" or "0 passed, 1 failed".
#
# usage: docker/e2e.sh [--build-only] [--keep]
#   --build-only  stop after building the images (no cluster, no test)
#   --keep        leave the cluster and dockerd running afterwards
# Works on a bare Debian 12 host with no container registry: installs
# docker.io, docker-compose and debootstrap (scripts/deps.txt [e2e]), starts
# Debian's dockerd by hand when no daemon answers (no systemd needed) and
# builds the debian:bookworm-slim base image with debootstrap when it is
# missing. Needs root for dockerd. Logs go to $E2E_WORK (/tmp/strata-e2e).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build_only=0
keep=0
for a in "$@"; do
	case $a in
	--build-only) build_only=1 ;;
	--keep) keep=1 ;;
	*)
		echo "usage: docker/e2e.sh [--build-only] [--keep]" >&2
		exit 2
		;;
	esac
done
WORK=${E2E_WORK:-/tmp/strata-e2e}
PROJECT=${E2E_PROJECT:-strata-e2e}
COMPOSE_FILE=$root/docker/docker-compose.yml
TEST_SERVICE=e2e
export STRATA_IMAGE=${STRATA_IMAGE:-strata:e2e}
IMAGE=$STRATA_IMAGE
UP_TIMEOUT=${E2E_TIMEOUT:-600}
mkdir -p "$WORK"
t0=$(date +%s)
step() { echo "[$(($(date +%s) - t0))s] $*"; }
result() {
	if [ "$1" -eq 0 ]; then echo "1 passed, 0 failed"; else echo "0 passed, 1 failed"; fi
}

step "packages (scripts/deps.txt [e2e])"
scripts/install-deps.sh e2e

DOCKERD_PID=
compose() { docker-compose -p "$PROJECT" -f "$COMPOSE_FILE" "$@"; }
cleanup() {
	set +e
	if [ "$build_only" -eq 0 ] && [ "$keep" -eq 0 ]; then
		compose logs --no-color >"$WORK/compose.log" 2>&1
		compose down -v -t 0 >/dev/null 2>&1
	fi
	if [ -n "$DOCKERD_PID" ] && [ "$keep" -eq 0 ]; then
		kill "$DOCKERD_PID" 2>/dev/null && wait "$DOCKERD_PID" 2>/dev/null
	fi
}
trap cleanup EXIT

if docker info >/dev/null 2>&1; then
	step "using the running Docker daemon (${DOCKER_HOST:-default socket})"
else
	step "start dockerd (no daemon answered)"
	if [ "$(id -u)" -ne 0 ]; then
		echo "e2e: no Docker daemon answers and starting one needs root;" \
			"run as root or set DOCKER_HOST" >&2
		result 1
		exit 1
	fi
	export DOCKER_HOST=unix://$WORK/docker.sock
	dockerd --host "$DOCKER_HOST" --pidfile "$WORK/dockerd.pid" \
		--exec-root "$WORK/exec" >"$WORK/dockerd.log" 2>&1 &
	DOCKERD_PID=$!
	for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
	if ! docker info >/dev/null 2>&1; then
		echo "e2e: dockerd did not come up; see $WORK/dockerd.log" >&2
		tail -5 "$WORK/dockerd.log" >&2
		# A second dockerd cannot share /var/lib/docker with a running one.
		if others=$(pgrep -a -x dockerd | grep -v "^$DOCKERD_PID "); then
			echo "e2e: another dockerd is running and holds /var/lib/docker:" >&2
			echo "$others" >&2
			echo "e2e: point DOCKER_HOST at its --host socket and rerun" >&2
		fi
		result 1
		exit 1
	fi
fi
# The e2e service talks to the daemon (to kill -9 a segment store) through
# this socket, mounted into its container.
sock=${DOCKER_HOST:-unix:///var/run/docker.sock}
export STRATA_E2E_DOCKER_SOCK=${sock#unix://}

if ! docker image inspect debian:bookworm-slim >/dev/null 2>&1; then
	step "base image debian:bookworm-slim from debootstrap (no registry needed)"
	# the Debian mirror apt uses (deb822 file first, then sources.list)
	MIRROR=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
	[ -n "$MIRROR" ] || MIRROR=$(awk '$1=="deb"{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
	[ -n "$MIRROR" ] || MIRROR=http://deb.debian.org/debian
	ROOTFS=$WORK/rootfs
	rm -rf "$ROOTFS"
	debootstrap --variant=minbase bookworm "$ROOTFS" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || {
		tail -20 "$WORK/debootstrap.log" >&2
		result 1
		exit 1
	}
	# HTTPS from containers goes through this host's egress: trust the
	# host's extra CAs (per machine: copied at run time, never committed).
	mkdir -p "$ROOTFS/usr/local/share/ca-certificates"
	cp /usr/local/share/ca-certificates/*.crt "$ROOTFS/usr/local/share/ca-certificates/" 2>/dev/null || true
	rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
	tar -C "$ROOTFS" -c . | docker import -c 'CMD ["/bin/bash"]' - debian:bookworm >/dev/null
	docker tag debian:bookworm debian:bookworm-slim
	rm -rf "$ROOTFS"
fi

step "validate the compose files (docker-compose 1.29 feature set)"
compose config -q
docker-compose -f docker/docker-compose.standalone.yml config -q

step "build $IMAGE (docker/Dockerfile; log: $WORK/build.log)"
if ! docker build --force-rm -f docker/Dockerfile -t "$IMAGE" . >"$WORK/build.log" 2>&1; then
	tail -60 "$WORK/build.log"
	result 1
	exit 1
fi
docker run --rm "$IMAGE" sh -c 'ls /usr/bin/strata* /usr/lib/strata/plugins/' | tr '\n' ' '
echo
step "build the S3 server and test images"
if ! compose build --force-rm >>"$WORK/build.log" 2>&1; then
	tail -60 "$WORK/build.log"
	result 1
	exit 1
fi
if [ "$build_only" -eq 1 ]; then
	step "images built"
	exit 0
fi

step "up; the result is the exit code of the $TEST_SERVICE service (log: $WORK/up.log)"
rc=0
timeout "$UP_TIMEOUT" docker-compose -p "$PROJECT" -f "$COMPOSE_FILE" up \
	--no-build --no-color --abort-on-container-exit \
	--exit-code-from "$TEST_SERVICE" >"$WORK/up.log" 2>&1 || rc=$?
grep -E "^${TEST_SERVICE}[_-]" "$WORK/up.log" | tail -40 || true
step "done rc=$rc"
if [ "$rc" -ne 0 ]; then tail -60 "$WORK/up.log"; fi
result "$rc"
exit "$rc"
