#!/usr/bin/env bash
# Make sure Redis (127.0.0.1:6379) and PostgreSQL (127.0.0.1:5432) answer; start them if not.
set -euo pipefail

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    echo "services: starting Redis" >&2
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi
if ! command -v pg_isready >/dev/null; then
    echo "services: PostgreSQL is not installed; the test suite needs it on 127.0.0.1:5432 with trust" \
        "auth for the users postgres and root (e.g. apt-get install postgresql, then pg_hba.conf)" >&2
    exit 1
fi
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    echo "services: starting PostgreSQL" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
fi
for _ in $(seq 1 50); do
    redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432 && exit 0
    sleep 0.2
done
echo "services: Redis or PostgreSQL did not come up" >&2
exit 1
