#!/usr/bin/env bash
# Installs (or checks) every external component the tests and the demo use. Safe to run repeatedly.
# - moto_server and cfn-lint: Python tools, preinstalled on this project's machines; PyPI is not reachable
#   here, so a missing one is a hard error with the install command for a user's own machine.
# - redis-server: Debian package, installed when missing (the data-plane tests need it).
# - Go modules and the Lambda Runtime Interface Emulator come through the Go module proxy via go.mod.
set -euo pipefail

missing=0
for tool in moto_server cfn-lint; do
  if command -v "$tool" >/dev/null 2>&1; then
    echo "ok: $tool ($(command -v "$tool"))"
  else
    echo "MISSING: $tool. Install it with: pip install 'moto[server]' cfn-lint" >&2
    missing=1
  fi
done

if command -v redis-server >/dev/null 2>&1; then
  echo "ok: redis-server ($(redis-server --version | head -c 60))"
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing redis-server from Debian's packages"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools >/dev/null
  # The package starts a system service on 6379; the tests start their own servers on free ports.
  (service redis-server stop || true) >/dev/null 2>&1
  echo "ok: redis-server ($(redis-server --version | head -c 60))"
else
  echo "MISSING: redis-server. Install it with: sudo apt-get install redis-server redis-tools" >&2
  missing=1
fi

echo "downloading Go modules"
go mod download
exit "$missing"
