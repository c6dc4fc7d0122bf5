#!/bin/sh
# Renders the HTML report of a bundled sample in headless Chromium and saves
# docs/screenshots/report.png. Needs the Debian package `chromium` (installed when missing).
set -eu
cd "$(dirname "$0")/.."
command -v chromium >/dev/null || apt-get install -y chromium
out=$(mktemp -d)
cargo run --locked --quiet -- analyze samples/server_restart_refused.pcap \
    samples/server_restart_refused_client_utc.log --html "$out/report.html" --quiet || [ $? -eq 2 ]
profile=$(mktemp -d)
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --screenshot=docs/screenshots/report.png --window-size=1280,1800 \
    "file://$out/report.html" 2>/dev/null
rm -rf "$profile"
echo "docs/screenshots/report.png from $out/report.html"
