#!/usr/bin/env bash
# make e2e: build the Strata image, bring up docker/docker-compose.yml
# (3 controllers, 3 segment stores, an S3 server) and exit with the result of
# its e2e service, printing "1 passed, 0 failed" or "0 passed, 1 failed".
#
# usage: docker/e2e.sh [--build-only] [--keep] [--no-cache]
#   --build-only  stop after building the images (no cluster, no test)
#   --keep        leave the cluster and dockerd running afterwards
#   --no-cache    build every image from scratch (a cold run's time)
# Environment: E2E_WORK (logs), E2E_PROJECT (compose project), STRATA_IMAGE,
# E2E_UP_TIMEOUT (s, cluster start, 300), E2E_TIMEOUT (s, the test, 600),
# E2E_CMAKE_ARGS (extra cmake flags for the image's build stage).
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
cache=()
for a in "$@"; do
	case $a in
	--build-only) build_only=1 ;;
	--keep) keep=1 ;;
	--no-cache) cache=(--no-cache) ;;
	*)
		echo "usage: docker/e2e.sh [--build-only] [--keep] [--no-cache]" >&2
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
UP_TIMEOUT=${E2E_UP_TIMEOUT:-300}
TEST_TIMEOUT=${E2E_TIMEOUT:-600}
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

# A daemon already running on another socket (e.g. one started by hand
# with --host) holds /var/lib/docker, so a second one could not start: use
# it. Its socket is the --host argument on its command line.
if ! docker info >/dev/null 2>&1 && [ -z "${DOCKER_HOST:-}" ]; then
	for h in $(pgrep -a -x dockerd | grep -o -- '--host[= ]unix://[^ ]*' | sed 's/^--host[= ]//'); do
		if DOCKER_HOST=$h docker info >/dev/null 2>&1; then
			export DOCKER_HOST=$h
			break
		fi
	done
fi
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
# The build stage gets a tag too, so that its layers (the [build] packages)
# stay cached while older build stages are pruned below.
commit=$(git -C "$root" describe --always --dirty --abbrev=12 2>/dev/null || echo unknown)
build_args=(--force-rm "${cache[@]}" --build-arg "CMAKE_ARGS=${E2E_CMAKE_ARGS:-}"
	--build-arg "STRATA_GIT_COMMIT=$commit" -f docker/Dockerfile)
if ! { docker build "${build_args[@]}" --target build -t "$IMAGE-build" . &&
	docker build "${build_args[@]}" -t "$IMAGE" .; } >"$WORK/build.log" 2>&1; then
	tail -60 "$WORK/build.log"
	result 1
	exit 1
fi
docker run --rm "$IMAGE" sh -c 'ls /usr/bin/strata* /usr/lib/strata/plugins/' | tr '\n' ' '
echo
version=$(docker run --rm "$IMAGE" strata-controller --version)
echo "$version"
if [[ $version != *"commit $commit"* ]]; then
	echo "e2e: the image's --version does not name commit $commit" >&2
	result 1
	exit 1
fi
step "check the compose configs with the binaries (--check-config)"
check() {
	docker run --rm -v "$root/docker/config:/etc/strata:ro" "$@" || {
		echo "e2e: docker/config does not pass --check-config: $*" >&2
		result 1
		exit 1
	}
}
for n in 1 2 3; do
	check -e STRATA_NODE_ID=$n "$IMAGE" \
		strata-controller --config /etc/strata/controller.yaml --check-config
done
check -e STRATA_TIER2_OPTIONS_ACCESS_KEY_ID=S3RVER \
	-e STRATA_TIER2_OPTIONS_SECRET_ACCESS_KEY=S3RVER "$IMAGE" \
	strata-segmentstore --config /etc/strata/segmentstore.yaml --check-config
check "$IMAGE" strata-standalone --config /etc/strata/standalone.yaml --check-config
step "build the S3 server and test images"
if ! compose build --force-rm "${cache[@]}" >>"$WORK/build.log" 2>&1; then
	tail -60 "$WORK/build.log"
	result 1
	exit 1
fi
# Images of earlier runs that these builds replaced (only ours: labelled).
docker image prune -f --filter label=org.strata.image >/dev/null || true
if [ "$build_only" -eq 1 ]; then
	step "images built"
	exit 0
fi

# Not `up --abort-on-container-exit`: the test kills a store container on
# purpose, and that would stop the whole cluster. `up -d` returns once every
# service started (it waits for the healthchecks that depends_on names, and
# fails when one turns unhealthy); then wait for the e2e container alone.
step "up: 3 controllers, 3 segment stores, s3 (log: $WORK/up.log)"
rc=0
timeout "$UP_TIMEOUT" docker-compose -p "$PROJECT" -f "$COMPOSE_FILE" up -d \
	--no-build --no-color >"$WORK/up.log" 2>&1 || rc=$?
if [ "$rc" -ne 0 ]; then
	step "the cluster did not come up (rc=$rc)"
	tail -30 "$WORK/up.log"
	compose ps
	compose logs --no-color --tail=30
	result 1
	exit 1
fi
cid=$(compose ps -q "$TEST_SERVICE")
step "running the $TEST_SERVICE service (at most ${TEST_TIMEOUT}s)"
rc=$(timeout "$TEST_TIMEOUT" docker wait "$cid") || rc=124
docker logs "$cid" >"$WORK/e2e.log" 2>&1 || true
sed 's/^/  /' "$WORK/e2e.log" | tail -60
if [ "$rc" -ne 0 ]; then
	[ "$rc" -eq 124 ] && echo "e2e: the test did not finish within ${TEST_TIMEOUT}s" >&2
	compose ps
	compose logs --no-color --tail=40 ctrl1 ctrl2 ctrl3 store1 store2 store3 s3
fi
step "done rc=$rc"
result "$rc"
exit "$rc"
