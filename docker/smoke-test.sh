#!/usr/bin/env bash
# Start the docker-compose.yml cluster, wait until every node has logged
# member_up for each of the other four, stop one node and wait until the
# others log member_down for it, then remove the cluster.
#
# Usage: docker/smoke-test.sh [TIMEOUT_SECONDS]   (default 60 per phase)
#
# Needs the images from docker/build-images.sh. Exits 0 on success and 1 on
# a timeout, after printing the logs of the cluster.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
timeout="${1:-60}"
project=swim-smoke
compose=(docker-compose --project-directory "$repo" -f "${repo}/docker-compose.yml" -p "$project")
nodes=(py1 py2 py3 rs1 rs2)
stopped=py3

log() { echo "smoke-test.sh: $*" >&2; }

cleanup() { "${compose[@]}" down --timeout 5 >/dev/null 2>&1 || true; }
trap cleanup EXIT

# Print how many distinct member addresses node $1 has logged on lines that
# contain $2. Both implementations write a member as ID@IP:PORT#RENEWAL.
count_members() {
    "${compose[@]}" logs --no-color "$1" 2>/dev/null |
        grep -- "$2" | grep -oE '@[0-9.]+:[0-9]+' | sort -u | wc -l
}

# Wait until each node in the remaining arguments has logged lines that
# contain $1 for at least $2 distinct members.
wait_for() {
    local pattern="$1" want="$2" node deadline
    shift 2
    deadline=$((SECONDS + timeout))
    for node in "$@"; do
        until (($(count_members "$node" "$pattern") >= want)); do
            if ((SECONDS >= deadline)); then
                log "timed out after ${timeout}s: ${node} logged '${pattern}' for fewer than ${want} members"
                "${compose[@]}" logs --no-color >&2 || true
                exit 1
            fi
            sleep 1
        done
    done
}

"${compose[@]}" up -d
start=$SECONDS
wait_for member_up $((${#nodes[@]} - 1)) "${nodes[@]}"
log "converged: every node logged member_up for the other $((${#nodes[@]} - 1)) in $((SECONDS - start))s"

"${compose[@]}" stop "$stopped" >/dev/null 2>&1
start=$SECONDS
remaining=()
for node in "${nodes[@]}"; do
    [[ "$node" == "$stopped" ]] || remaining+=("$node")
done
wait_for member_down 1 "${remaining[@]}"
log "every other node logged member_down after ${stopped} stopped, in $((SECONDS - start))s"
