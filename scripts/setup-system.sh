#!/usr/bin/env bash
# Installs the system libraries Dawn needs to run headless on Mesa llvmpipe (OpenGL ES backend):
# libEGL.so (unversioned, from libegl-dev) and the swrast DRI driver (libgl1-mesa-dri).
# A no-op when they are present. Safe to run repeatedly; never fails the caller when it cannot
# install (the GPU tests then report the missing library themselves).
set -u
have_egl() { ldconfig -p 2>/dev/null | grep -q 'libEGL.so '; }
have_swrast() {
  ls /usr/lib/*/dri/swrast_dri.so /usr/lib/dri/swrast_dri.so >/dev/null 2>&1 ||
    ls /usr/lib/*/dri/kms_swrast_dri.so >/dev/null 2>&1
}
if have_egl && have_swrast; then
  exit 0
fi
echo "drmkit: installing Mesa EGL + llvmpipe (libegl1 libegl-dev libgl1-mesa-dri) for headless Dawn"
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
    echo "drmkit: not root and no sudo; install libegl1 libegl-dev libgl1-mesa-dri by hand" >&2
    exit 0
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null 2>&1 || true
$SUDO apt-get install -y -qq --no-install-recommends libegl1 libegl-dev libgl1-mesa-dri >/dev/null 2>&1 ||
  echo "drmkit: apt-get install failed; GPU tests will report the missing libraries" >&2
exit 0
