#!/bin/sh
# SPDX-License-Identifier: MIT
# Installs the Debian 12 packages vetpacs needs. Idempotent: a fast no-op when all are present.
#   scripts/deps.sh build   what `make` and `make run` need
#   scripts/deps.sh test    plus the peers and tools `make test` uses
set -eu

BUILD="build-essential cmake python3 pkg-config zlib1g-dev libxxhash-dev libsqlite3-dev libinih-dev \
    libjpeg62-turbo-dev libcharls-dev libopenjp2-7-dev libspng-dev \
    libmicrohttpd-dev libgnutls28-dev libsodium-dev libjansson-dev"
TEST="clang libclang-rt-14-dev python3-pytest python3-pydicom python3-numpy dcmtk dicom3tools orthanc \
    libgdcm-tools libopenjp2-tools openjph-tools curl"

case "${1:-build}" in
build) want="$BUILD" ;;
test) want="$BUILD $TEST" ;;
*) echo "usage: $0 build|test" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
    s=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$s" in
    *" installed") ;;
    *) missing="$missing $p" ;;
    esac
done
[ -z "$missing" ] && exit 0

echo "Installing Debian packages:$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# Packages with a service (orthanc, a test peer) must not start it: the tests run their own
# instance on free ports. policy-rc.d is Debian's switch for that; a temporary one is put in
# place unless the machine has its own.
guard=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod 755 /usr/sbin/policy-rc.d
    guard=1
fi
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing || { rc=$?; [ -z "$guard" ] || $SUDO rm -f /usr/sbin/policy-rc.d; exit $rc; }
[ -z "$guard" ] || $SUDO rm -f /usr/sbin/policy-rc.d
