#!/bin/bash
# Container health check without curl: GET http://127.0.0.1:PORT/PATH with
# bash's /dev/tcp; healthy when the status line says 200.
# usage: strata-healthcheck PORT [PATH]   (PATH defaults to /health/ready)
case ${1:-} in
-h | --help)
	echo "usage: strata-healthcheck PORT [PATH]"
	echo "Exit 0 when GET http://127.0.0.1:PORT/PATH (default /health/ready)"
	echo "answers 200, else 1. Ports: controller 9091, segment store 12346."
	exit 0
	;;
esac
port=${1:?usage: strata-healthcheck PORT [PATH]}
path=${2:-/health/ready}
exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$path" >&3
read -r -t 5 _ status _ <&3 2>/dev/null || exit 1
[ "$status" = 200 ]
