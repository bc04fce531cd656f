#!/usr/bin/env bash
# Installs everything the stack and the tests need: the venv, Debian packages (nginx-light,
# its Lua module, deck) and a running RabbitMQ with its management plugin. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
VENV=.venv
EXTRAS="${EXTRAS:-test}"

log() { printf '\033[1m[bootstrap]\033[0m %s\n' "$*"; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
  echo "need root for: $*" >&2; return 1; fi; }

apt_updated=0
apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null; then
    echo "Please install: ${missing[*]} (no apt-get on this machine)" >&2; return 1
  fi
  log "installing ${missing[*]}"
  [ $apt_updated = 1 ] || { as_root apt-get update -qq; apt_updated=1; }
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Packages without their recommends (daemons, desktop extras), installed unconditionally.
apt_install_bare() {
  [ $apt_updated = 1 ] || { as_root apt-get update -qq; apt_updated=1; }
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

python_env() {
  "$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' 2>/dev/null ||
    { echo "Python 3.11 is required (found: $($PYTHON --version 2>&1))" >&2; exit 1; }
  [ -x "$VENV/bin/python" ] || { log "creating $VENV"; "$PYTHON" -m venv "$VENV"; }
  local stamp="$VENV/.installed-$EXTRAS"
  if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    log "installing the project and its [$EXTRAS] extras into $VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check --upgrade pip
    "$VENV/bin/pip" install -q --disable-pip-version-check -e ".[$EXTRAS]"
    touch "$stamp"
  fi
}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

rabbitmq() {
  if ! port_open 127.0.0.1 5672; then
    if ! command -v rabbitmq-server >/dev/null; then apt_install rabbitmq-server; fi
    log "starting RabbitMQ"
    as_root rabbitmq-server -detached
    for _ in $(seq 1 60); do port_open 127.0.0.1 5672 && break; sleep 1; done
    port_open 127.0.0.1 5672 || { echo "RabbitMQ did not come up on :5672" >&2; exit 1; }
  fi
  if [ "${WITH_RABBIT_MANAGEMENT:-1}" = 1 ] && ! port_open 127.0.0.1 15672; then
    log "enabling rabbitmq_management (tests create a vhost per run through it)"
    as_root rabbitmq-plugins enable rabbitmq_management >/dev/null
    for _ in $(seq 1 60); do port_open 127.0.0.1 15672 && break; sleep 1; done
    port_open 127.0.0.1 15672 || { echo "RabbitMQ management did not come up on :15672" >&2; exit 1; }
  fi
  if ! port_open 127.0.0.1 15692; then
    log "enabling rabbitmq_prometheus (queue depth, dead letters, consumers on :15692)"
    as_root rabbitmq-plugins enable rabbitmq_prometheus >/dev/null
    for _ in $(seq 1 60); do port_open 127.0.0.1 15692 && break; sleep 1; done
    port_open 127.0.0.1 15692 || { echo "rabbitmq_prometheus did not come up on :15692" >&2; exit 1; }
  fi
}

# promtool runs the alert-rule tests (deploy/prometheus); the package's daemon is not wanted.
prometheus_tools() {
  command -v promtool >/dev/null && return 0
  log "installing prometheus (for promtool)"
  apt_install_bare prometheus
  # Where the postinst could start it (an init script, no systemd), stop it again.
  if [ -x /etc/init.d/prometheus ]; then as_root /etc/init.d/prometheus stop >/dev/null 2>&1 || true; fi
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    as_root systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
}

# Headless Chromium takes the docs' screenshots (scripts/prometheus_screenshot.py).
chromium_browser() {
  command -v chromium >/dev/null && return 0
  log "installing chromium (for the docs' screenshots)"
  apt_install_bare chromium
}

python_env
# The offline Kubernetes manifest checks' own tools (deploy/k8s/tools/install.sh).
if [ "$EXTRAS" = test ]; then deploy/k8s/tools/install.sh; fi
# The local gateway's auth, rate limits, CORS, tracing and kong_* metrics run in Lua
# (kong/lua/): OpenResty's module for Debian's nginx; it needs libpcre3, lua-cjson is its JSON.
apt_install nginx-light deck libnginx-mod-http-lua libpcre3 lua-cjson
prometheus_tools
chromium_browser
if [ "${AMQP_URI:-}" = "" ] || [[ "${AMQP_URI}" == *"@localhost:5672"* ]] || [[ "${AMQP_URI}" == *"@127.0.0.1:5672"* ]]; then
  rabbitmq
fi
log "ready"
