#!/usr/bin/env bash
# Build the local base image swim-base:SUITE from a minimal Debian root
# filesystem made with debootstrap, because this machine has no container
# registry to pull a base image from.
#
# Usage: docker/build-base.sh [--force] [--suite SUITE]
#
# Runs as root, non-interactively. Skips all work when the image already
# exists. When only the image is missing, it re-imports the cached tarball.
# --force runs debootstrap again and replaces both.
#
# Environment:
#   SWIM_BASE_CACHE      where the rootfs tarball is kept (default /var/cache/swim-base)
#   SWIM_DEBIAN_MIRROR   Debian archive URL (default: the one in this host's apt sources)
#   SWIM_DEBIAN_SECURITY Debian security archive URL (default: from apt sources, else none)
set -euo pipefail

suite=trixie
force=0
while (($#)); do
    case "$1" in
        --force) force=1 ;;
        --suite)
            suite="${2:?--suite needs a Debian suite name, e.g. trixie}"
            shift
            ;;
        -h | --help)
            awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
            exit 0
            ;;
        *)
            echo "build-base.sh: unknown argument '$1'; expected --force or --suite SUITE" >&2
            exit 2
            ;;
    esac
    shift
done

image="swim-base:${suite}"
cache_dir="${SWIM_BASE_CACHE:-/var/cache/swim-base}"
tarball="${cache_dir}/${suite}-minbase.tar"

log() { echo "build-base.sh: $*" >&2; }

# Print the URIs of the apt sources whose suite list contains exactly $1,
# read from both the deb822 (*.sources) and one-line (*.list) formats. apt
# reads only files with those two suffixes, so disabled files are skipped.
apt_uris_for_suite() {
    local wanted="$1" file
    shopt -s nullglob
    for file in /etc/apt/sources.list.d/*.sources; do
        awk -v wanted="$wanted" '
            function flush() {
                if (is_deb && uris != "") {
                    n = split(suites, list, /[ \t]+/)
                    for (i = 1; i <= n; i++) if (list[i] == wanted) { print uris; break }
                }
                is_deb = 0; uris = ""; suites = ""
            }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") is_deb = 1 }
            tolower($1) == "uris:" { $1 = ""; uris = $0 }
            tolower($1) == "suites:" { $1 = ""; suites = $0 }
            END { flush() }
        ' "$file"
    done
    for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f "$file" ]] || continue
        # deb [options] URI SUITE COMPONENTS...
        sed -E 's/\[[^]]*\]//' "$file" | awk -v wanted="$wanted" '$1 == "deb" && $3 == wanted { print $2 }'
    done
    shopt -u nullglob
}

first_uri() { tr -s ' \t' '\n' | sed '/^$/d' | head -n 1; }

find_mirrors() {
    local codename
    # shellcheck source=/dev/null
    codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
    mirror="${SWIM_DEBIAN_MIRROR:-}"
    security="${SWIM_DEBIAN_SECURITY:-}"
    if [[ -z "$mirror" && -n "$codename" ]]; then
        mirror="$(apt_uris_for_suite "$codename" | first_uri)"
    fi
    if [[ -z "$security" && -n "$codename" ]]; then
        security="$(apt_uris_for_suite "${codename}-security" | first_uri)"
    fi
    if [[ -z "$mirror" ]]; then
        log "no Debian mirror found in /etc/apt/sources.list*; set SWIM_DEBIAN_MIRROR to the archive URL"
        exit 1
    fi
}

# Apt sources for the image: the suite and its updates on the host's mirror,
# and security updates when the host's apt config names a security archive.
write_image_sources() {
    local rootfs="$1"
    rm -f "${rootfs}/etc/apt/sources.list"
    {
        printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\n' "$mirror" "$suite" "$suite"
        printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
        if [[ -n "$security" ]]; then
            printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\n' "$security" "$suite"
            printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
        fi
    } >"${rootfs}/etc/apt/sources.list.d/debian.sources"
}

# Keep later apt-get installs in derived images small: no docs, man pages,
# translations, cached .deb files or the two package caches that apt-get
# update would write (about 90 MB for trixie).
write_minimal_apt_config() {
    local rootfs="$1"
    cat >"${rootfs}/etc/dpkg/dpkg.cfg.d/01-swim-minimal" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
EOF
    cat >"${rootfs}/etc/apt/apt.conf.d/01-swim-minimal" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb || true"; };
EOF
}

trim_rootfs() {
    local rootfs="$1"
    rm -rf "${rootfs}"/var/lib/apt/lists/* "${rootfs}"/var/cache/apt/*.bin \
        "${rootfs}"/var/cache/apt/archives/*.deb "${rootfs}"/var/log/*.log \
        "${rootfs}"/var/log/apt/* "${rootfs}"/tmp/* "${rootfs}"/var/tmp/*
    find "${rootfs}/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    find "${rootfs}/usr/share/doc" -mindepth 1 -type d -empty -delete
    rm -rf "${rootfs}"/usr/share/man/* "${rootfs}"/usr/share/info/*
    find "${rootfs}/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
}

make_tarball() {
    command -v debootstrap >/dev/null || {
        log "debootstrap not found; install it with: apt-get install -y debootstrap"
        exit 1
    }
    find_mirrors
    log "debootstrap ${suite} (minbase) from ${mirror}"
    mkdir -p "$cache_dir"
    # A global variable, so the EXIT trap can still read it if a step below fails.
    rootfs="$(mktemp -d "${cache_dir}/rootfs.XXXXXX")"
    trap 'rm -rf "$rootfs" "${tarball}.partial"' EXIT
    debootstrap --variant=minbase --components=main "$suite" "$rootfs" "$mirror" >&2
    write_image_sources "$rootfs"
    write_minimal_apt_config "$rootfs"
    trim_rootfs "$rootfs"
    tar --numeric-owner --xattrs -C "$rootfs" -cf "${tarball}.partial" .
    mv "${tarball}.partial" "$tarball"
    rm -rf "$rootfs"
    trap - EXIT
    log "wrote ${tarball} ($(du -h "$tarball" | cut -f1))"
}

import_tarball() {
    docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["/bin/bash"]' \
        --change "LABEL org.opencontainers.image.title=swim-base org.opencontainers.image.version=${suite}" \
        "$tarball" "$image" >/dev/null
    log "imported ${image} ($(docker image inspect --format '{{.Size}}' "$image" | numfmt --to=iec))"
}

if [[ "$(id -u)" -ne 0 ]]; then
    log "must run as root (debootstrap needs it)"
    exit 1
fi

if ((!force)) && docker image inspect "$image" >/dev/null 2>&1; then
    log "${image} already exists; pass --force to rebuild it"
    exit 0
fi
if ((force)) || [[ ! -f "$tarball" ]]; then
    make_tarball
else
    log "reusing cached ${tarball}"
fi
import_tarball
