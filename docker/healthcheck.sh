#!/bin/bash
# Container health check without curl: GET http://127.0.0.1:PORT/PATH with
# bash's /dev/tcp; healthy when the status line says 200.
# usage: strata-healthcheck PORT [PATH]   (PATH defaults to /health/ready)
port=${1:?usage: strata-healthcheck PORT [PATH]}
path=${2:-/health/ready}
exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$path" >&3
read -r -t 5 _ status _ <&3 2>/dev/null || exit 1
[ "$status" = 200 ]
