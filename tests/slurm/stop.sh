#!/bin/bash
# Stops the daemons that tests/slurm/start.sh DIR started, by the pids in their pid files.
DIR=${1:?usage: stop.sh DIR}
for f in "$DIR/slurmd.pid" "$DIR/slurmctld.pid"; do
  [ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null
done
if [ -f "$DIR/munged.started" ] && [ -s /run/munge/munged.pid ]; then
  kill "$(cat /run/munge/munged.pid)" 2>/dev/null
  rm -f "$DIR/munged.started"
fi
exit 0
