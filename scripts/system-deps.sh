#!/usr/bin/env bash
# Installs the Debian packages Greenlight's features and tests need, once; then starts the
# databases the tests talk to if they are not up. Safe to run again.
set -euo pipefail
PACKAGES=(git rsync openssh-server openssh-client prometheus chromium chromium-driver)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The Debian package starts its own Prometheus; Greenlight runs its own instances.
  systemctl stop prometheus 2>/dev/null || pkill -x prometheus 2>/dev/null || true
fi
if [ "${1:-}" = "--services" ]; then
  if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
  fi
  if ! mariadb-admin -h 127.0.0.1 -uroot ping >/dev/null 2>&1; then
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  fi
  for _ in $(seq 60); do
    pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null && mariadb-admin -h 127.0.0.1 -uroot ping >/dev/null 2>&1 && break
    sleep 1
  done
fi
