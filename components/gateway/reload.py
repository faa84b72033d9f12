"""The reloader sidecar's script: HAProxy reloads itself when its files change.

Pure, no Pulumi: the script is rendered text (POSIX sh, run from the HAProxy image).
"""

from __future__ import annotations

from typing import Final

from components.gateway.settings import HAPROXY_CONFIG, RELOAD_SCRIPT, GatewaySettings

RELOAD_POLL_SECONDS: Final = 2
"""How often the reload script looks at the files, by default."""

_RELOAD_SCRIPT: Final = r"""#!/bin/sh
# Rendered by components/gateway/reload.py; edit the renderer, not this file.
#
# Reloads HAProxy when the files it reads change, so that key and certificate changes
# need no pod restart. Runs beside HAProxy from the same image (POSIX sh and coreutils
# only), as the same user, in a pod with a shared process namespace.
#
# Every INTERVAL seconds it hashes the files of the configuration and certificate
# directories (following the projected volume's symlinks). When the hash has changed
# and is the same again one second later, it checks the files with `haproxy -c` and, if
# they pass, sends SIGUSR2 to the HAProxy master: a new worker loads them and the old
# one finishes what it has in flight. Files that fail the check are reported and not
# loaded (HAProxy keeps serving the previous ones) until they change again.
#
# Usage: sh @RELOAD_SCRIPT@ [INTERVAL_SECONDS]   (default @INTERVAL@)
# The haproxy binary is `haproxy` on PATH, or $HAPROXY.
set -u

config_dir='@CONFIG_DIR@'
certs_dir='@CERTS_DIR@'
config="$config_dir/@HAPROXY_CONFIG@"
interval=${1:-@INTERVAL@}
haproxy=${HAPROXY:-haproxy}

log() {
    echo "reload-on-change: $*"
}

files_hash() {
    sha256sum -- "$config_dir"/* "$certs_dir"/* 2>/dev/null | sha256sum
}

# status_field NAME PID: a field of /proc/PID/status (shell built-ins only).
status_field() {
    while read -r name value rest; do
        if [ "$name" = "$1:" ]; then
            echo "$value"
            return 0
        fi
    done 2>/dev/null <"/proc/$2/status"
    return 1
}

# master_pid: the HAProxy master of this configuration: an `haproxy` process started
# with `-W` and `-f <this haproxy.cfg>` whose parent is not HAProxy (its workers are its
# children). /proc only: the image has no procps.
master_pid() {
    for dir in /proc/[0-9]*; do
        pid=${dir#/proc/}
        { read -r comm <"$dir/comm"; } 2>/dev/null || continue
        [ "$comm" = haproxy ] || continue
        ppid=$(status_field PPid "$pid") || continue
        parent=
        { read -r parent <"/proc/$ppid/comm"; } 2>/dev/null
        [ "$parent" = haproxy ] && continue
        arguments=" $(tr '\0' ' ' <"$dir/cmdline" 2>/dev/null) "
        case $arguments in *" -W "*) ;; *) continue ;; esac
        case $arguments in *" -f $config "*) ;; *) continue ;; esac
        echo "$pid"
        return 0
    done
    return 1
}

# handles PID NUMBER: PID has a handler for signal NUMBER. HAProxy's master re-executes
# itself after each load; a signal in that window would meet the default action (exit).
handles() {
    mask=$(status_field SigCgt "$1") || return 1
    mask=${mask#????????}
    [ $(((0x$mask >> ($2 - 1)) & 1)) -eq 1 ]
}

reload() {
    tries=0
    while [ "$tries" -lt 100 ]; do
        if pid=$(master_pid) && handles "$pid" 12; then
            kill -s USR2 "$pid" && return 0
        fi
        tries=$((tries + 1))
        sleep 0.1
    done
    log "no HAProxy master ready for SIGUSR2 found; will try again"
    return 1
}

# The files as they are now are the loaded ones; said only once they are hashed, so
# that a change made after the line appears is one the script will see.
loaded=$(files_hash)
log "watching $config_dir and $certs_dir every ${interval}s"
while :; do
    sleep "$interval"
    current=$(files_hash)
    [ "$current" = "$loaded" ] && continue
    sleep 1
    [ "$(files_hash)" = "$current" ] || continue
    if output=$("$haproxy" -c -f "$config" 2>&1); then
        reload || continue
        log "files changed: HAProxy reloaded (SIGUSR2 to master $pid)"
    else
        log "files changed but fail 'haproxy -c', HAProxy keeps the previous ones:"
        echo "$output"
    fi
    loaded=$current
done
"""


def reload_script(settings: GatewaySettings) -> str:
    """The POSIX sh script that reloads HAProxy when its files change (a sidecar)."""
    return (
        _RELOAD_SCRIPT.replace("@CONFIG_DIR@", settings.config_dir)
        .replace("@CERTS_DIR@", settings.certificates_dir)
        .replace("@INTERVAL@", str(RELOAD_POLL_SECONDS))
        .replace("@RELOAD_SCRIPT@", RELOAD_SCRIPT)
        .replace("@HAPROXY_CONFIG@", HAPROXY_CONFIG)
    )
