#!/bin/sh
# docker/base-image.sh IMAGE - make IMAGE (localhost/debian:bookworm-slim)
# if podman does not have it: a pristine Debian 12 root from debootstrap
# --variant=minbase, without package lists or downloaded .debs, like the
# official slim image. Used by the deployment test (the image's base) and
# the fresh-system test (the machine a new user starts from).
#
# Prints one line saying what it did; exit 0, or 1 with the end of the
# debootstrap log. Needs root, podman and debootstrap.
# DEBIAN_MIRROR: the mirror (default: the one apt uses on this host).
set -u
image=${1:?usage: docker/base-image.sh IMAGE}
if podman image exists "$image"; then
    echo "base image $image present"
    exit 0
fi
mirror=${DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
    mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
             awk '/^URIs:/ {u=$2} /^Suites:/ && / bookworm( |$)/ {print u; exit}')
fi
if [ -z "$mirror" ]; then
    mirror=$(awk '$1=="deb" && $3=="bookworm" {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
fi
mirror=${mirror:-http://deb.debian.org/debian}
w=$(mktemp -d /tmp/synth-base.XXXXXX)
trap 'rm -rf "$w"' EXIT
t0=$(date +%s)
if ! debootstrap --variant=minbase bookworm "$w/rootfs" "$mirror" >"$w/debootstrap.log" 2>&1; then
    tail -5 "$w/debootstrap.log"
    echo "debootstrap --variant=minbase bookworm ($mirror) failed"
    exit 1
fi
rm -rf "$w/rootfs/var/cache/apt/archives/"*.deb "$w/rootfs/var/cache/apt/"*.bin "$w/rootfs/var/lib/apt/lists/"*
if ! tar -C "$w/rootfs" -c . | podman import - "$image" >/dev/null; then
    echo "podman import of the base image $image failed"
    exit 1
fi
echo "base image $image created: debootstrap --variant=minbase bookworm ($mirror), $(( $(date +%s) - t0 ))s"
