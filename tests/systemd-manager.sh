#!/bin/bash
# Part of tests/systemd.sh (run there inside `unshare --mount`): starts a
# `systemd --user` manager on a private /run/systemd and drives
# styleframe-kiosk.service (shipped file + test drop-in in $UNIT_DIR) through
# start, reload, watchdog restart, stop and the restart policy.
# Exit status: number of failed checks.
set -uo pipefail
: "${WORK:?}" "${UNIT_DIR:?}"
unit=styleframe-kiosk.service
bad=0
check() { # DESCRIPTION COMMAND...
    local what=$1; shift
    if "$@"; then echo "  ok: $what"; else echo "  FAIL: $what"; bad=$((bad + 1)); fi
}
prop() { systemctl --user show -p "$1" --value "$unit"; }
# wait_for SECONDS PROPERTY VALUE-REGEX
wait_for() {
    local end=$((SECONDS + $1))
    while [ $SECONDS -lt $end ]; do
        [[ "$(prop "$2")" =~ ^($3)$ ]] && return 0
        sleep 0.2
    done
    echo "    $2=$(prop "$2") (wanted $3)"
    return 1
}
show() { echo "  [$(systemctl --user show -p ActiveState,SubState,Result,MainPID,NRestarts,StatusText,WatchdogUSec,ExecMainStatus "$unit" | tr '\n' ' ')]"; }

mount -t tmpfs tmpfs /run/systemd && mkdir -p /run/systemd/system || exit 90
export XDG_RUNTIME_DIR=$WORK/xdg XDG_CONFIG_HOME=$(dirname "$(dirname "$UNIT_DIR")")
chmod 700 "$XDG_RUNTIME_DIR"
SYSTEMD_LOG_TARGET=console /lib/systemd/systemd --user >"$WORK/manager.log" 2>&1 &
manager=$!
for _ in $(seq 50); do
    systemctl --user is-system-running >/dev/null 2>&1 && break
    case "$(systemctl --user is-system-running 2>/dev/null)" in running | degraded) break ;; esac
    sleep 0.2
done
echo "  manager: $(systemctl --user is-system-running 2>&1)"

echo "- start: READY=1 from the stand-in, watchdog armed"
check "start returns 0" systemctl --user start "$unit"
show
check "active/running" wait_for 3 SubState running
check "WatchdogUSec=2s" wait_for 1 WatchdogUSec 2s
check "status text from STATUS=" wait_for 3 StatusText "showing frames"
pid1=$(prop MainPID)

echo "- reload: SIGHUP -> RELOADING=1, READY=1, STATUS=reloaded 1"
check "reload returns 0" systemctl --user reload "$unit"
check "stand-in saw the reload" wait_for 3 StatusText "reloaded 1"
check "same process after reload" test "$(prop MainPID)" = "$pid1"

echo "- frames stop after 3 s: the gate stops pinging, the watchdog restarts the service"
# Poll while waiting: between the kill and the restart (RestartSec=1) the unit
# shows Result=watchdog; any other reason (exit code, signal) would fail the check.
results=""
end=$((SECONDS + 15))
while [ $SECONDS -lt $end ]; do
    r=$(prop Result)
    case " $results " in *" $r "*) ;; *) results="$results $r" ;; esac
    [[ "$(prop NRestarts)" =~ ^[1-9] ]] && break
    sleep 0.1
done
echo "  Result values seen:$results"
check "restarted" test "$(prop NRestarts)" -ge 1
check "because of the watchdog (Result=watchdog)" grep -qw watchdog <<<"$results"
show
check "new process" test "$(prop MainPID)" != "$pid1"
check "running again" wait_for 3 SubState running

echo "- stop: SIGTERM -> STOPPING=1, exit 0"
check "stop returns 0" systemctl --user stop "$unit"
show
check "inactive after stop" wait_for 3 ActiveState inactive
check "clean exit (Result=success)" wait_for 1 Result success

echo "- exit 3 (model missing): not restarted"
mkdir -p "$UNIT_DIR/$unit.d"
printf '[Service]\nEnvironment=STANDIN_EXIT=3\n' >"$UNIT_DIR/$unit.d/zz-exit.conf"
systemctl --user daemon-reload
systemctl --user reset-failed "$unit" 2>/dev/null
systemctl --user start "$unit"
check "failed" wait_for 5 ActiveState failed
sleep 2
show
check "exit status 3" test "$(prop ExecMainStatus)" = 3
check "no restart (RestartPreventExitStatus)" test "$(prop NRestarts)" = 0

echo "- exit 1 (runtime error): restarted"
printf '[Service]\nEnvironment=STANDIN_EXIT=1\n' >"$UNIT_DIR/$unit.d/zz-exit.conf"
systemctl --user daemon-reload
systemctl --user reset-failed "$unit"
systemctl --user start "$unit"
check "restarted after exit 1" wait_for 6 NRestarts "[1-9][0-9]*"
show
systemctl --user stop "$unit"

if [ -n "${REAL_BIN:-}" ]; then
    echo "- the real daemon: styleframe run (synthetic source, headless display)"
    cat >"$UNIT_DIR/$unit.d/zz-exit.conf" <<EOF
[Service]
ExecStart=
ExecStart=$REAL_BIN run --config $WORK/real.toml
Environment=STYLEFRAME_NOTIFY_STANDIN= STANDIN_EXIT=
WatchdogSec=10
EOF
    systemctl --user daemon-reload
    systemctl --user reset-failed "$unit" 2>/dev/null
    check "start returns 0 (READY=1 within TimeoutStartSec)" systemctl --user start "$unit"
    show
    pid=$(prop MainPID)
    check "WatchdogUSec=10s" wait_for 1 WatchdogUSec 10s
    echo "  ... 25 s: the watchdog (10 s) must stay fed by shown frames"
    sleep 25
    show
    check "still running, same process, no restart" test "$(prop SubState)/$(prop MainPID)/$(prop NRestarts)" = "running/$pid/0"
    check "reload returns 0" systemctl --user reload "$unit"
    sleep 2
    check "same process after reload" test "$(prop MainPID)" = "$pid"
    t0=$SECONDS
    check "stop returns 0" systemctl --user stop "$unit"
    echo "  stop took $((SECONDS - t0)) s (TimeoutStopSec=5)"
    show
    check "clean stop (Result=success)" wait_for 2 Result success

    echo "- the real daemon started inside the night window: ready at once, dark"
    # A window from an hour ago to two hours ahead, in the manager's local time.
    h=$(date +%-H)
    { cat "$WORK/real.toml"
      printf '[gallery]\nnight_start = "%02d:00"\nnight_end = "%02d:00"\n' $(( (h + 23) % 24 )) $(( (h + 2) % 24 ))
    } >"$WORK/real-night.toml"
    sed -i "s|$WORK/real.toml|$WORK/real-night.toml|" "$UNIT_DIR/$unit.d/zz-exit.conf"
    printf 'TimeoutStartSec=20\n' >>"$UNIT_DIR/$unit.d/zz-exit.conf"
    systemctl --user daemon-reload
    systemctl --user reset-failed "$unit" 2>/dev/null
    check "start at night returns 0 (READY=1 while dark)" systemctl --user start "$unit"
    show
    pid=$(prop MainPID)
    sleep 12
    check "still running at night, same process, no restart" test "$(prop SubState)/$(prop MainPID)/$(prop NRestarts)" = "running/$pid/0"
    check "stop at night returns 0" systemctl --user stop "$unit"
fi

echo "- PrivateUsers=yes (styleframe.service) keeps group-based device access"
# A char device (1,5 = zero) owned root:video 0660 stands in for /dev/video0.
mkdir -p "$WORK/dev" "$WORK/out"
mknod "$WORK/dev/cam" c 1 5 && chgrp video "$WORK/dev/cam" && chmod 0660 "$WORK/dev/cam"
chmod 0755 "$WORK" "$WORK/dev"
chmod 0777 "$WORK/out"
for g in video none; do
    {
        echo "[Service]"
        echo "Type=oneshot"
        echo "User=nobody"
        echo "PrivateUsers=yes"
        [ $g = video ] && echo "SupplementaryGroups=video"
        echo "ExecStart=/bin/sh -c 'head -c1 $WORK/dev/cam >/dev/null && touch $WORK/out/$g'"
    } >"$UNIT_DIR/pu-$g.service"
done
systemctl --user daemon-reload
systemctl --user start pu-video.service pu-none.service 2>/dev/null
check "opens a root:video 0660 device with SupplementaryGroups=video" test -e "$WORK/out/video"
check "and is denied without it (the check can fail)" test ! -e "$WORK/out/none"

kill "$manager"
wait "$manager" 2>/dev/null
[ $bad -eq 0 ] || { echo "  --- manager log (tail) ---"; tail -20 "$WORK/manager.log"; }
exit $bad
