#!/usr/bin/env bash
# Validates and unit-tests the monitoring config in deploy/:
#   promtool check rules / check config / test rules, and amtool check-config + routing tests.
# Installs Debian's `prometheus` (for promtool) and `prometheus-alertmanager` (for amtool) when
# they are missing and apt-get is available; uses sudo only when not root.
# Usage: scripts/promtool-test.sh   (from anywhere; exits non-zero on the first failure)
set -euo pipefail

cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

apt_install() {
    if ! command -v apt-get >/dev/null 2>&1; then
        return 1
    fi
    $SUDO apt-get update -qq
    # The Debian packages ship systemd units; nothing is started in a container without systemd.
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

# The same package ships the Prometheus server the end-to-end test (ops_prometheus_*) starts.
if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
    echo "promtool/prometheus not found: installing Debian package 'prometheus'"
    apt_install prometheus || { echo "error: cannot install prometheus (no apt-get?)" >&2; exit 1; }
fi
promtool --version 2>&1 | head -n1

echo "== promtool check rules"
promtool check rules deploy/prometheus/rules.yml

echo "== promtool check config"
promtool check config deploy/prometheus/prometheus.yml

echo "== promtool test rules"
# Test files name ../rules.yml relative to themselves; promtool resolves rule_files that way.
promtool test rules deploy/prometheus/tests/*.yml

if ! command -v amtool >/dev/null 2>&1; then
    # One small package (Go binary, no dependencies on Debian 12): cheap enough to install.
    echo "amtool not found: installing Debian package 'prometheus-alertmanager'"
    apt_install prometheus-alertmanager || true
fi
if command -v amtool >/dev/null 2>&1; then
    AM=deploy/alertmanager/alertmanager.yml
    echo "== amtool check-config"
    amtool check-config "$AM"
    echo "== amtool routing: P0 -> pager+chat, P1 -> chat, P2 -> digest"
    amtool config routes test --config.file="$AM" --verify.receivers=pager,chat severity=P0 alertname=KestrelKillSwitch 2>/dev/null
    amtool config routes test --config.file="$AM" --verify.receivers=chat severity=P1 alertname=KestrelBookStale 2>/dev/null
    amtool config routes test --config.file="$AM" --verify.receivers=digest severity=P2 alertname=KestrelMdRestFallback 2>/dev/null
else
    echo "amtool unavailable (install prometheus-alertmanager): skipping alertmanager checks"
fi

echo "== grafana dashboard JSON"
if command -v python3 >/dev/null 2>&1; then
    python3 -m json.tool deploy/grafana/kestrel.json >/dev/null && echo "  SUCCESS: deploy/grafana/kestrel.json parses"
else
    echo "python3 unavailable: skipping JSON check"
fi

echo "all monitoring checks passed"
