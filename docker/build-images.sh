#!/usr/bin/env bash
# Build the node images swim-rust-peer:dev and swim-py-node:dev, and the
# base image swim-base:trixie they start from, on this machine.
#
# Usage: docker/build-images.sh [--force] [--no-cache]
#   --force     rebuild the base image and fetch the crates and wheels again
#   --no-cache  build the node images without Docker's layer cache
#
# Runs as root (for debootstrap). Needs docker, debootstrap, cargo and
# python3 with pip on the host. The build containers reach the Debian mirror
# but cannot verify TLS to crates.io or PyPI, so the host fetches the crates
# (cargo vendor) and wheels (pip download) into docker/.deps/, which the
# Dockerfiles copy. Each step is skipped while its inputs are unchanged, and
# Docker's layer cache does the rest, so a rebuild with no change takes seconds.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
deps="${repo}/docker/.deps"
suite=trixie
base_image="swim-base:${suite}"
rust_image="swim-rust-peer:dev"
python_image="swim-py-node:dev"
# The python3 of Debian trixie, for which the wheels are chosen.
python_version=3.13

force=0
cache_flag=()
for arg in "$@"; do
    case "$arg" in
        --force) force=1 ;;
        --no-cache) cache_flag=(--no-cache) ;;
        -h | --help)
            awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
            exit 0
            ;;
        *)
            echo "build-images.sh: unknown argument '$arg'; expected --force or --no-cache" >&2
            exit 2
            ;;
    esac
done

log() { echo "build-images.sh: $*" >&2; }
now() { date +%s.%N; }
elapsed() { awk -v start="$1" -v end="$(now)" 'BEGIN { printf "%.1f", end - start }'; }
timings=()

require() {
    command -v "$1" >/dev/null || {
        log "$1 not found; $2"
        exit 1
    }
}

# Write the crates of rust_peer/Cargo.lock as one tarball. The tarball is
# byte-for-byte the same for the same Cargo.lock (sorted names, fixed times
# and owners, gzip without a timestamp), so Docker's COPY cache still hits
# after a re-fetch.
vendor_crates() {
    local tarball="${deps}/rust-vendor.tar.gz" stamp="${deps}/rust-vendor.sha256" want
    want="$(sha256sum "${repo}/rust_peer/Cargo.lock" | cut -d' ' -f1)"
    if ((!force)) && [[ -f "$tarball" && "$(cat "$stamp" 2>/dev/null)" == "$want" ]]; then
        log "crates for Cargo.lock ${want:0:12} already vendored"
        return
    fi
    require cargo "install a Rust toolchain on the host; it runs only 'cargo vendor'"
    local work
    work="$(mktemp -d)"
    log "vendoring crates of rust_peer/Cargo.lock"
    cargo vendor --quiet --locked --versioned-dirs \
        --manifest-path "${repo}/rust_peer/Cargo.toml" "${work}/vendor" >/dev/null
    tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
        -C "${work}/vendor" -cf - . | gzip -n >"${tarball}.partial"
    mv "${tarball}.partial" "$tarball"
    echo "$want" >"$stamp"
    rm -rf "$work"
}

# Download wheels for the runtime dependencies and the build backend that
# pyproject.toml names, for the image's Python and this machine's CPU.
download_wheels() {
    local dir="${deps}/wheels" stamp="${deps}/wheels.sha256" want requirements
    require python3 "install Python 3.11 or later with pip on the host"
    requirements="$(python3 -c '
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    data = tomllib.load(f)
print("\n".join(data["project"]["dependencies"] + data["build-system"]["requires"]))
' "${repo}/pyproject.toml")"
    want="$(printf '%s\n%s %s\n' "$requirements" "$python_version" "$(uname -m)" | sha256sum | cut -d' ' -f1)"
    if ((!force)) && [[ -d "$dir" && "$(cat "$stamp" 2>/dev/null)" == "$want" ]]; then
        log "wheels for pyproject.toml ${want:0:12} already downloaded"
        return
    fi
    log "downloading wheels: $(echo "$requirements" | paste -sd' ')"
    rm -rf "$dir"
    local arch
    arch="$(uname -m)"
    # shellcheck disable=SC2086 # one requirement per line, none with spaces
    python3 -m pip download --quiet --dest "$dir" --only-binary=:all: \
        --python-version "$python_version" --implementation cp \
        --platform "manylinux_2_28_${arch}" --platform "manylinux_2_17_${arch}" \
        --platform "manylinux2014_${arch}" $requirements
    echo "$want" >"$stamp"
}

build_image() {
    local dockerfile="$1" tag="$2" start
    start="$(now)"
    log "building ${tag} from ${dockerfile}"
    docker build "${cache_flag[@]}" --build-arg "BASE_IMAGE=${base_image}" \
        -f "${repo}/${dockerfile}" -t "$tag" "$repo"
    timings+=("${tag}: $(elapsed "$start")s")
}

require docker "install Docker Engine"
mkdir -p "$deps"
total_start="$(now)"

start="$(now)"
base_flags=(--suite "$suite")
((force)) && base_flags+=(--force)
"${repo}/docker/build-base.sh" "${base_flags[@]}"
timings+=("${base_image}: $(elapsed "$start")s")

start="$(now)"
vendor_crates
download_wheels
timings+=("crates and wheels: $(elapsed "$start")s")

build_image docker/rust_peer.Dockerfile "$rust_image"
build_image docker/python.Dockerfile "$python_image"

log "done in $(elapsed "$total_start")s"
for line in "${timings[@]}"; do
    log "  ${line}"
done
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' |
    grep -E "^(${base_image}|${rust_image}|${python_image}) " >&2
