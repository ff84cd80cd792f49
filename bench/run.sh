#!/bin/sh
# run.sh runs lapse's benchmarks and keeps their raw output in
# bench/results/ (gitignored), one file per step, named by the UTC time
# of the run:
#
#   STAMP-machine.txt     the machine, Go, the commit and the load
#   STAMP-gobench.txt     go test ./bench -bench . -benchmem -count=5
#   STAMP-loadgen-N.txt   the HTTP load generator, run LOADGEN_RUNS times
#   STAMP-loadgen-split.txt  once more with one core's worth of
#                         GOMAXPROCS each for server and client
#
# Arguments are passed to every loadgen run, e.g.
#   bench/run.sh -duration 10s -concurrency 64
# Environment: LOADGEN_RUNS (default 2), GOBENCH=0 skips the Go
# benchmarks, SPLIT=0 skips the split run, PROFILE=1 writes the servers'
# CPU and allocation profiles of the first run to STAMP-profiles/.
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
i=1
while [ "$i" -le "${LOADGEN_RUNS:-2}" ]; do
	prof=""
	if [ "$i" = 1 ] && [ "${PROFILE:-0}" = 1 ]; then
		prof="-profile-dir $out/$stamp-profiles"
	fi
	echo "== loadgen run $i: loadgen $prof $*"
	# shellcheck disable=SC2086 # $prof is empty or two words
	"$bin/loadgen" $prof "$@" | tee "$out/$stamp-loadgen-$i.txt"
	i=$((i + 1))
done
if [ "${SPLIT:-1}" != 0 ]; then
	echo "== loadgen split run: loadgen -server-procs 1 -client-procs 1 $*"
	"$bin/loadgen" -server-procs 1 -client-procs 1 "$@" | tee "$out/$stamp-loadgen-split.txt"
fi
echo "raw output in $out/$stamp-*"
