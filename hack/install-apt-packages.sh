#!/usr/bin/env bash
# Install the Debian packages listed in hack/apt-packages.txt that are not installed yet.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
missing=()
while read -r pkg; do
  [[ -z "$pkg" || "$pkg" == \#* ]] && continue
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done <"$here/apt-packages.txt"
if ((${#missing[@]} == 0)); then
  echo "[apt] all packages installed"
  exit 0
fi
echo "[apt] installing: ${missing[*]}"
sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# docker-registry's package starts a system service on :5000; ARC's tests start their own registries.
# haproxy's starts one with /etc/haproxy/haproxy.cfg; the local stack runs its own (hack/haproxy.py).
if command -v systemctl >/dev/null 2>&1; then
  $sudo systemctl disable --now docker-registry >/dev/null 2>&1 || true
  $sudo systemctl disable --now haproxy >/dev/null 2>&1 || true
fi
echo "[apt] done"
