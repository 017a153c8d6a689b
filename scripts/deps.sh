#!/usr/bin/env bash
# Installs what sluice needs to build and test on Debian 12: Debian packages (apt-get, when
# root; otherwise prints the exact command and stops; chromium is for the browser tests;
# golang-k8s-kube-openapi-dev ships the Kubernetes OpenAPI definitions the test API server of
# tests/k8s/ validates Job bodies against, openssl makes its TLS certificate) and the
# npm packages of package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(
	gcc libc6-dev musl-tools pkg-config meson ninja-build python3 tzdata procps
	libsqlite3-dev liblua5.4-dev libcjson-dev libmicrohttpd-dev libcurl4-openssl-dev
	libcrypt-dev libcmocka-dev libsodium-dev valgrind
	python3-dateutil python3-urllib3
	python3-pandas
	chromium
	openssh-server openssh-client iproute2 util-linux
	openssl golang-k8s-kube-openapi-dev
	slurm-wlm slurm-client munge slurmdbd mariadb-server mariadb-client
	clang
)
command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || pkgs+=(npm)

missing=()
for p in "${pkgs[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]})); then
	cmd=(apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=900 "${missing[@]}")
	if [[ $(id -u) -ne 0 ]]; then
		echo "sluice needs these Debian packages: ${missing[*]}" >&2
		echo "Install them as root with:" >&2
		echo "  apt-get update && ${cmd[*]}" >&2
		exit 1
	fi
	echo "Installing Debian packages: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -o DPkg::Lock::Timeout=900 -qq
	"${cmd[@]}"
fi

# npm packages from the committed lock file (the web UI's libraries and build tools, and the test
# tools: playwright-core drives the chromium above); reinstalled when the lock changes.
if [[ -f package-lock.json ]]; then
	stamp=node_modules/.sluice-lock
	if [[ ! -f $stamp ]] || ! cmp -s package-lock.json "$stamp"; then
		echo "Installing npm packages from package-lock.json"
		npm ci --no-audit --no-fund --loglevel=error
		cp package-lock.json "$stamp"
	fi
fi
