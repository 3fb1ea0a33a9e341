#!/bin/bash
# walcount-healthcheck: the container's health check. GET /healthz on
# walcount's metrics listener (WALCOUNT_METRICS_LISTEN, as walcount reads
# it); exit 0 on a 200, else 1 with the status line and reason, which
# `docker inspect` shows. Speaks HTTP/1.0 through bash's /dev/tcp, so the
# slim image needs neither curl nor wget.
set -u

listen=${WALCOUNT_METRICS_LISTEN-127.0.0.1:9187}
if [ -z "$listen" ]; then
	echo "metrics.listen is empty: the /healthz listener is disabled"
	exit 1
fi
port=${listen##*:}
host=${listen%:*}
host=${host#[}
host=${host%]}
case $host in
'' | 0.0.0.0 | '*') host=127.0.0.1 ;;
::) host=::1 ;;
esac

if ! exec 3<>"/dev/tcp/$host/$port"; then
	echo "cannot connect to $host:$port"
	exit 1
fi
printf 'GET /healthz HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n' "$host" >&3

status=""
IFS= read -r -t 4 status <&3
status=${status%$'\r'}
# Headers up to the blank line, then the body: the reason on a 503.
body=""
while IFS= read -r -t 2 line <&3; do
	line=${line%$'\r'}
	[ -z "$line" ] && break
done
IFS= read -r -t 2 body <&3
exec 3<&-

case $status in
"HTTP/1."?" 200"*)
	exit 0
	;;
esac
echo "${status:-no answer from $host:$port}${body:+: $body}"
exit 1
