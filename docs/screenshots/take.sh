#!/usr/bin/env bash
# Re-takes the app screenshots under a virtual X server (no display needed).
#   apt-get install -y xvfb xdotool x11-apps imagemagick libxcursor1 libxkbcommon-x11-0 libegl1 libgl1-mesa-dri
#   docs/screenshots/take.sh [INPUT...]        (default: a few of samples/*.pcap)
# Then a second run on samples/pipes_busy_storm.* for pipes.png (SKIP_PIPES=1 leaves it out).
# IPCSCOPE_GUI_BIN: the app binary (default target/debug/ipcscope); IPCSCOPE_GUI_ARGS: arguments
# put before the files (e.g. "gui" if the app is a subcommand). SHOT_WAIT: seconds to load.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

if [ "${1:-}" != "--inside" ]; then
  exec xvfb-run -a -s "-screen 0 1600x1000x24" "$0" --inside "$@"
fi
shift

bin="${IPCSCOPE_GUI_BIN:-$root/target/debug/ipcscope}"
read -r -a pre <<< "${IPCSCOPE_GUI_ARGS:-}"
if [ "$#" -eq 0 ]; then
  set -- "$root/samples/server_restart_refused.pcap" \
         "$root/samples/abortive_close.pcap" "$root/samples/keepalive_timeout.pcap" \
         "$root/samples/keepalive_reset.pcap" "$root/samples/idle_reset.pcap" "$root/samples/port_reuse.pcap"
fi

# The real ImageMagick (some images put a stand-in `convert` earlier on PATH).
convert_bin="$(command -v magick || true)"
[ -x /usr/bin/convert ] && convert_bin=/usr/bin/convert
[ -n "$convert_bin" ] || convert_bin=convert

shoot() {
  xwd -root -silent | "$convert_bin" xwd:- -strip +dither -colors 255 "png8:$here/$1.png"
  echo "$here/$1.png: $(stat -c %s "$here/$1.png") bytes"
}

# A fresh settings folder, so a remembered window size or zone does not change the layout.
cfg="$(mktemp -d)"
app=""
trap 'if [ -n "$app" ]; then kill $app 2>/dev/null || true; fi; rm -rf "$cfg"' EXIT

# Starts the app on the given files and places its window.
start_app() {
  rm -rf "${cfg:?}"/*
  XDG_DATA_HOME="$cfg" XDG_CONFIG_HOME="$cfg" HOME="$cfg" LIBGL_ALWAYS_SOFTWARE=1 \
    "$bin" "${pre[@]}" "$@" &
  app=$!
  sleep "${SHOT_WAIT:-10}"
  # No window manager under Xvfb: place and size the window ourselves.
  win="$(xdotool search --name '^ipcscope$' | head -n1 || true)"
  if [ -n "$win" ]; then
    xdotool windowmove "$win" 0 0 windowsize "$win" 1600 1000
    sleep 3
  fi
}

stop_app() {
  kill "$app" 2>/dev/null || true
  wait "$app" 2>/dev/null || true
  app=""
}

start_app "$@"
shoot overview
# First finding in the list (top of the left panel).
xdotool mousemove "${FINDING_X:-120}" "${FINDING_Y:-93}" click 1
sleep 3
xdotool mousemove 1000 990
sleep 1
shoot finding
# The details pane's "Connection details" tab.
xdotool mousemove "${CONN_TAB_X:-1370}" "${CONN_TAB_Y:-37}" click 1
sleep 3
shoot connection
# The same view in the light theme (toolbar "Light").
xdotool mousemove "${LIGHT_X:-680}" "${LIGHT_Y:-11}" click 1
sleep 3
shoot light
stop_app

# Named pipes: the busy storm trace with its client log; the first finding is pipe_busy.
if [ -z "${SKIP_PIPES:-}" ]; then
  start_app "$root/samples/pipes_busy_storm.etl" "$root/samples/pipes_busy_storm_client.log"
  xdotool mousemove "${FINDING_X:-120}" "${FINDING_Y:-93}" click 1
  sleep 3
  # Hover a failed open so the status bar shows it.
  xdotool mousemove "${PIPE_HOVER_X:-800}" "${PIPE_HOVER_Y:-190}"
  sleep 2
  shoot pipes
  stop_app
fi
