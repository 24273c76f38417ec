#!/usr/bin/env bash
# Install the named Debian packages (as root, or through sudo); used by the test and
# benchmark commands so a bare machine gets espeak-ng, ffmpeg, postgresql, chromium.
set -euo pipefail
(($#)) || exit 0
if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null; then sudo="sudo"; else
  echo "please install these Debian packages first: $*" >&2
  exit 1
fi
echo "installing system packages: $*"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
