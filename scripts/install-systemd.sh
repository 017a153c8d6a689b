#!/usr/bin/env bash
# Installs sluice as a systemd service (run as root, after `make build`):
#   the binaries into /usr/local/bin (meson install), a system user `sluice` whose home
#   /var/lib/sluice is $SLUICE_HOME (0700), /var/lib/sluice/dags for the DAG files, and
#   dist/sluice.service as /etc/systemd/system/sluice.service; then enables and starts it when
#   systemd runs. Safe to run again (it updates the binaries and the unit).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
if [[ $(id -u) -ne 0 ]]; then
	echo "install-systemd.sh: run as root" >&2
	exit 1
fi
meson install -C "$build" --no-rebuild --quiet
if ! id sluice >/dev/null 2>&1; then
	useradd --system --home-dir /var/lib/sluice --shell /usr/sbin/nologin --user-group sluice
fi
install -d -m 0700 -o sluice -g sluice /var/lib/sluice
install -d -m 0750 -o sluice -g sluice /var/lib/sluice/dags
install -m 0644 dist/sluice.service /etc/systemd/system/sluice.service
if [[ -d /run/systemd/system ]]; then
	systemctl daemon-reload
	systemctl enable --now sluice.service
	echo "sluice is running: systemctl status sluice; journalctl -u sluice"
	echo "admin password: /var/lib/sluice/admin_password.txt"
else
	echo "installed; systemd is not running here, so the service was not started"
fi
