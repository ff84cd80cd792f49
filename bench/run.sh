#!/bin/sh
# run.sh runs lapse's benchmarks and keeps their raw output in
# bench/results/ (gitignored), one file per step, named by the UTC time
# of the run:
#
#   STAMP-machine.txt     the machine, Go, the commit and the load
#   STAMP-gobench.txt     go test ./bench -bench . -benchmem -count=5
#   STAMP-loadgen-N.txt   the HTTP load generator, bare vs lapse (SQLite),
#                         run LOADGEN_RUNS times
#   STAMP-loadgen-split.txt  once more with one core's worth of
#                         GOMAXPROCS each for server and client
#   STAMP-redis-N.txt     bare vs lapse vs lapse-redis vs
#                         lapse-redis-nocache in one run, REDIS_RUNS times
#   STAMP-propagation-N.txt  revocation propagation between two
#                         lapse-redis nodes, REDIS_RUNS times
#   STAMP-sweep-N.txt     sweepbench -n 100000, SWEEP_RUNS times
#   STAMP-proxy-N.txt     proxybench: nginx alone vs nginx + lapse's
#                         auth_request, PROXY_RUNS times (default 1)
#
# Arguments are passed to every throughput run of loadgen, e.g.
#   bench/run.sh -duration 10s -concurrency 64
# Environment: LOADGEN_RUNS (default 2), REDIS_RUNS (default 2; 0 skips
# the Redis steps, which need redis-server), SWEEP_RUNS (default 2),
# GOBENCH=0 skips the Go benchmarks, SPLIT=0 skips the split run,
# PROFILE=1 writes the servers' CPU and allocation profiles of the first
# run to STAMP-profiles/.
set -eu
cd "$(dirname "$0")/.."
out=bench/results
mkdir -p "$out"
stamp=$(date -u +%Y%m%dT%H%M%SZ)

{
	echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "nproc: $(nproc)"
	lscpu | grep -i 'model name' || true
	free -h | sed -n 2p
	go version
	echo "kernel: $(uname -sr)"
	echo "redis-server: $(redis-server --version 2>/dev/null || /usr/bin/redis-server --version 2>/dev/null || echo none)"
	echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown), files changed in the work tree: $(git status --short 2>/dev/null | wc -l)"
	echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$out/$stamp-machine.txt"

if [ "${GOBENCH:-1}" != 0 ]; then
	echo "== go test ./bench -bench . -benchmem -count=5 -run '^\$'"
	go test ./bench -bench . -benchmem -count=5 -run '^$' | tee "$out/$stamp-gobench.txt"
fi

bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/loadgen" ./bench/cmd/loadgen
go build -o "$bin/sweepbench" ./bench/cmd/sweepbench
i=1
while [ "$i" -le "${LOADGEN_RUNS:-2}" ]; do
	prof=""
	if [ "$i" = 1 ] && [ "${PROFILE:-0}" = 1 ]; then
		prof="-profile-dir $out/$stamp-profiles"
	fi
	echo "== loadgen run $i: loadgen -servers bare,lapse $prof $*"
	# shellcheck disable=SC2086 # $prof is empty or two words
	"$bin/loadgen" -servers bare,lapse $prof "$@" | tee "$out/$stamp-loadgen-$i.txt"
	i=$((i + 1))
done
if [ "${SPLIT:-1}" != 0 ]; then
	echo "== loadgen split run: loadgen -servers bare,lapse -server-procs 1 -client-procs 1 $*"
	"$bin/loadgen" -servers bare,lapse -server-procs 1 -client-procs 1 "$@" | tee "$out/$stamp-loadgen-split.txt"
fi
i=1
while [ "$i" -le "${REDIS_RUNS:-2}" ]; do
	echo "== redis run $i: loadgen -servers bare,lapse,lapse-redis,lapse-redis-nocache $*"
	"$bin/loadgen" -servers bare,lapse,lapse-redis,lapse-redis-nocache "$@" | tee "$out/$stamp-redis-$i.txt"
	echo "== propagation run $i: loadgen -propagation 1000"
	"$bin/loadgen" -propagation 1000 | tee "$out/$stamp-propagation-$i.txt"
	i=$((i + 1))
done
i=1
while [ "$i" -le "${SWEEP_RUNS:-2}" ]; do
	echo "== sweep run $i: sweepbench -n 100000"
	"$bin/sweepbench" -n 100000 2>&1 | tee "$out/$stamp-sweep-$i.txt"
	i=$((i + 1))
done
# The forward-auth gateway behind nginx (needs nginx): nginx alone vs
# nginx with auth_request to lapse, interleaved.
i=1
while [ "$i" -le "${PROXY_RUNS:-1}" ] && command -v nginx >/dev/null; do
	go build -o "$bin/lapse" ./cmd/lapse
	go build -o "$bin/proxybench" ./bench/cmd/proxybench
	echo "== proxy run $i: proxybench -lapse lapse"
	"$bin/proxybench" -lapse "$bin/lapse" | tee "$out/$stamp-proxy-$i.txt"
	i=$((i + 1))
done
echo "raw output in $out/$stamp-*"
