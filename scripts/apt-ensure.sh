#!/usr/bin/env bash
# Install the Debian packages named as arguments that are not installed yet (apt, with sudo unless root); a second
# run checks and changes nothing. Used by notebooks:setup and CI.
set -euo pipefail
missing=()
for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
if ((${#missing[@]})); then
  echo "apt-ensure: installing ${missing[*]}"
  SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
