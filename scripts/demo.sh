#!/usr/bin/env bash
# Set up repzone, publish the sample tokens and start zoned on 127.0.0.1 port 5353.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
port="${REPZONE_DEMO_PORT:-5353}"

for sample in zones/samples/*.jsonl; do
    zone="$(basename "$sample" .jsonl)"
    .venv/bin/zonepub -c zones import --zone "$zone" "$sample"
done

mkdir -p var
if [ -f var/zoned.pid ] && kill -0 "$(cat var/zoned.pid)" 2>/dev/null; then
    kill "$(cat var/zoned.pid)"
    sleep 0.5
fi
# Detached from this shell (its own session, no inherited output), so it outlives the script.
setsid .venv/bin/zoned -c zones --listen 127.0.0.1 --port "$port" --log-file var/zoned.log \
    </dev/null >/dev/null 2>&1 &
echo $! > var/zoned.pid
for _ in $(seq 100); do
    dig @127.0.0.1 -p "$port" +short +time=1 +tries=1 2.0.0.127.bl.example.net A 2>/dev/null \
        | grep -q 127.0.0.2 && break
    sleep 0.1
done

cat <<EOT

zoned is serving the example zones on 127.0.0.1 port $port (pid $(cat var/zoned.pid),
log var/zoned.log).  Try:

  dig @127.0.0.1 -p $port 1.2.0.192.bl.example.net TXT     # a listed IP: counters and score
  dig @127.0.0.1 -p $port 1.2.0.192.bl.example.net A       # its return code (127.0.0.2)
  dig @127.0.0.1 -p $port 200.100.51.198.bl.example.net A  # inside 198.51.100.128/25
  dig @127.0.0.1 -p $port 9.9.9.9.bl.example.net A         # not listed: NXDOMAIN with SOA
  dig @127.0.0.1 -p $port 2.0.0.127.bl.example.net A       # RFC 5782 test entry
  dig @127.0.0.1 -p $port mail.spammer.example.dom.example.net A   # graded code 127.0.1.N
  .venv/bin/zonepub names --zone hash.example.net 192.0.2.1          # its hashed names
  dig @127.0.0.1 -p $port \$(.venv/bin/zonepub names --zone hash.example.net 192.0.2.1 | head -1) TXT

Stop it with: kill \$(cat var/zoned.pid)
EOT
