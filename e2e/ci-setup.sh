#!/usr/bin/env bash
# Installs Debian's Chromium and chromedriver for the end-to-end browser tests
# (e2e/tests/browser.rs), unless both are already present. Called by .ci/run;
# safe to run by hand (as root, or with sudo available). Never downloads a
# browser build of its own: only Debian packages.
set -euo pipefail

chromium="${TESSERA_E2E_CHROMIUM:-/usr/bin/chromium}"
chromedriver="${TESSERA_E2E_CHROMEDRIVER:-/usr/bin/chromedriver}"

if [ -x "$chromium" ] && [ -x "$chromedriver" ]; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
else
    echo "e2e/ci-setup.sh: chromium/chromedriver missing and not root (no sudo); install chromium chromium-driver" >&2
    exit 1
fi

echo "e2e/ci-setup.sh: installing chromium, chromium-driver and fonts (apt-get)..."
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq >/dev/null
"${sudo[@]}" apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-liberation fonts-dejavu-core >/dev/null

if [ ! -x "$chromium" ] || [ ! -x "$chromedriver" ]; then
    echo "e2e/ci-setup.sh: chromium or chromedriver still missing after apt-get install" >&2
    exit 1
fi
echo "e2e/ci-setup.sh: $("$chromedriver" --version 2>/dev/null | head -n1)"
