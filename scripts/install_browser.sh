#!/usr/bin/env bash
# The run report's browser test drives Debian's headless Chromium (never a downloaded browser build);
# a CJK font lets the screenshot show Chinese feedback text. Installs them only when missing.
set -euo pipefail
if [ -x /usr/bin/chromium ] && fc-list :lang=zh 2>/dev/null | grep -q .; then
  exit 0
fi
if [ "$(id -u)" != 0 ] && ! command -v sudo >/dev/null; then
  echo "error: the report's browser test needs Debian's chromium and fonts-wqy-zenhei; install them as root:" >&2
  echo "  apt-get install -y chromium chromium-driver fonts-wqy-zenhei" >&2
  exit 1
fi
SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
echo "installing Debian's chromium, chromium-driver and fonts-wqy-zenhei for the report's browser test"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver fonts-wqy-zenhei >/dev/null
