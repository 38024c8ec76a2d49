#!/bin/sh
# lb-entrypoint.sh - PID 1 of the load-balancer container: nginx, reloaded
# when a replica's address changes.
#
# Open-source nginx resolves the upstream names (server synth1:8080 ...)
# only when it starts or reloads. A replica restarted in place keeps its
# address, but one that is stopped and started again, or recreated, gets a
# new one; every 5 s this looks the names up and, when all resolve and an
# address changed, reloads nginx (graceful: running requests and streams
# continue on the old workers).
set -u
conf=/etc/nginx/nginx.conf
names=$(sed -n 's/^[[:space:]]*server[[:space:]]\{1,\}\([A-Za-z0-9._-]*\):[0-9]\{1,\}.*/\1/p' "$conf" | sort -u)
count=$(echo $names | wc -w)
resolve() {
    for n in $names; do getent hosts "$n" | awk '{print $1; exit}'; done | tr '\n' ' '
}
# nginx refuses to start while a name does not resolve: wait for the replicas
cur=$(resolve); i=0
while [ "$(echo $cur | wc -w)" -ne "$count" ] && [ $i -lt 60 ]; do
    sleep 1; i=$((i + 1)); cur=$(resolve)
done

nginx -g 'daemon off; error_log stderr warn;' &
pid=$!
trap 'kill -QUIT $pid 2>/dev/null' QUIT TERM INT   # graceful stop
trap 'kill -HUP $pid 2>/dev/null' HUP              # reload on demand
while kill -0 "$pid" 2>/dev/null; do
    sleep 5 &
    wait $!
    new=$(resolve)
    if [ "$new" != "$cur" ] && [ "$(echo $new | wc -w)" -eq "$count" ]; then
        echo "lb-entrypoint: replica addresses changed ($cur-> $new): reloading nginx" >&2
        kill -HUP "$pid" && cur=$new
    fi
done
wait "$pid"
