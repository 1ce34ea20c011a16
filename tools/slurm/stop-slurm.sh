#!/usr/bin/env bash
# Stop what tools/slurm/start-slurm.sh started, by its PID files (a munged that was already
# running is left alone), and unlink its configs from /etc/slurm. Packages stay installed.
# usage: stop-slurm.sh [DIR] [--purge]   (default DIR /tmp/slurm-local; --purge also removes DIR,
#        including the accounting database)
D=${1:-/tmp/slurm-local}
stop() {  # $1 = pid file
  [ -s "$1" ] || return 0
  local p; p=$(cat "$1")
  if kill -0 "$p" 2>/dev/null; then
    kill "$p"
    for i in $(seq 40); do kill -0 "$p" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$p" 2>/dev/null && kill -9 "$p"
    echo "stopped $(basename "$1" .pid) ($p)"
  fi
  rm -f "$1"
}
stop "$D/state/slurmd.pid"
stop "$D/state/slurmctld.pid"
stop "$D/state/slurmdbd.pid"
stop "$D/db/mysqld.pid"
stop "$D/state/munged.pid"        # only present if start-slurm.sh started munged
for f in slurm.conf gres.conf slurmdbd.conf; do
  [ "$(readlink /etc/slurm/$f)" = "$D/etc/$f" ] && rm -f /etc/slurm/$f
done
[ "${2:-}" = --purge ] && rm -rf "$D" && echo "removed $D"
exit 0
