#!/bin/sh
# Installs, upgrades or removes the StatusMonitor agent on this machine, with
# the agent binary of the StatusMonitor server that served this script.
#
#   curl -fsSL __SERVER__/install.sh | sudo sh -s -- --token sma_...
#
# Options:
#   --token TOKEN    the agent token from the dashboard (sma_...); needed for a
#                    first install, optional for an upgrade (the config is kept)
#   --server URL     the server the agent reports to [default: __SERVER__]
#   --ca-cert FILE   PEM certificate(s) to trust for an https:// server
#   --prefix DIR     install under DIR (DIR/bin, DIR/etc, DIR/var) instead of
#                    /usr/local/bin, /etc/statusmonitor-agent, /var/lib
#   --no-systemd     do not install the systemd service; say how to run it
#   --arch ARCH      install the agent for ARCH instead of this machine's
#   --uninstall      remove the binary, the service and the config
#   --purge          with --uninstall: also remove the spool (unsent reports)
#   --print-unit     print the systemd unit it would install, and exit
#
# It downloads the agent to a temporary file next to its destination, checks
# its SHA-256 against the server's SHA256SUMS, and only then moves it into
# place; the config file is written the same way, readable by root only.
set -eu

SERVER='__SERVER__'
TOKEN=''
CA_CERT=''
PREFIX=''
SYSTEMD=auto
ARCH=''
ACTION=install
PURGE=no
NAME=statusmonitor-agent
TMP_FILES=''

say() { printf '%s\n' "$*"; }
die() {
    printf 'statusmonitor install: error: %s\n' "$*" >&2
    exit 1
}
# shellcheck disable=SC2317 # called by the trap
cleanup() {
    for f in $TMP_FILES; do rm -f "$f"; done
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

while [ $# -gt 0 ]; do
    case $1 in
    --token) [ $# -ge 2 ] || die "--token needs a value"; TOKEN=$2; shift 2 ;;
    --token=*) TOKEN=${1#*=}; shift ;;
    --server) [ $# -ge 2 ] || die "--server needs a value"; SERVER=$2; shift 2 ;;
    --server=*) SERVER=${1#*=}; shift ;;
    --ca-cert) [ $# -ge 2 ] || die "--ca-cert needs a value"; CA_CERT=$2; shift 2 ;;
    --ca-cert=*) CA_CERT=${1#*=}; shift ;;
    --prefix) [ $# -ge 2 ] || die "--prefix needs a value"; PREFIX=$2; shift 2 ;;
    --prefix=*) PREFIX=${1#*=}; shift ;;
    --arch) [ $# -ge 2 ] || die "--arch needs a value"; ARCH=$2; shift 2 ;;
    --arch=*) ARCH=${1#*=}; shift ;;
    --no-systemd) SYSTEMD=no; shift ;;
    --uninstall) ACTION=uninstall; shift ;;
    --purge) PURGE=yes; shift ;;
    --print-unit) ACTION=print-unit; shift ;;
    -h | --help) sed -n '2,22p' "$0" 2>/dev/null || say "see the comments at the top of __SERVER__/install.sh"; exit 0 ;;
    *) die "unknown option '$1' (see the top of __SERVER__/install.sh)" ;;
    esac
done

# Where everything goes.
if [ -n "$PREFIX" ]; then
    case $PREFIX in /*) ;; *) PREFIX=$(pwd)/$PREFIX ;; esac
    PREFIX=${PREFIX%/}
    BIN_DIR=$PREFIX/bin
    CONF_DIR=$PREFIX/etc/$NAME
    STATE_DIRS=$PREFIX/var/lib/$NAME
else
    BIN_DIR=/usr/local/bin
    CONF_DIR=/etc/$NAME
    # Under DynamicUser=yes systemd keeps the state in /var/lib/private.
    STATE_DIRS="/var/lib/$NAME /var/lib/private/$NAME"
fi
BIN=$BIN_DIR/$NAME
CONF=$CONF_DIR/agent.env
UNIT=/etc/systemd/system/$NAME.service
SPOOL=/var/lib/$NAME/spool
[ -n "$PREFIX" ] && [ "$SYSTEMD" = no ] && SPOOL=$PREFIX/var/lib/$NAME/spool

# The unit as the agent ships it (packaging/systemd/), with this install's paths.
print_unit() {
    cat <<UNIT_EOF
__UNIT__
UNIT_EOF
}

if [ "$ACTION" = print-unit ]; then
    print_unit
    exit 0
fi

has_systemd() {
    [ "$SYSTEMD" != no ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1
}

need_root() {
    if [ "$(id -u)" != 0 ]; then
        die "$1 needs root: run it with sudo (or, without systemd, pass --prefix DIR --no-systemd)"
    fi
}

if [ "$ACTION" = uninstall ]; then
    if [ -z "$PREFIX" ] || { has_systemd && [ -f "$UNIT" ]; }; then need_root "uninstalling"; fi
    if has_systemd && [ -f "$UNIT" ]; then
        systemctl disable --now "$NAME" >/dev/null 2>&1 || true
        rm -f "$UNIT"
        systemctl daemon-reload
        say "removed the service $UNIT"
    fi
    rm -f "$BIN" && say "removed $BIN"
    rm -f "$CONF" "$CONF_DIR/ca.pem"
    rmdir "$CONF_DIR" 2>/dev/null || true
    say "removed the config $CONF"
    if [ "$PURGE" = yes ]; then
        for d in $STATE_DIRS; do rm -rf "$d"; done
        say "removed the spool ($STATE_DIRS)"
    else
        say "kept the spool ($STATE_DIRS); --purge removes it"
    fi
    if [ -n "$PREFIX" ]; then
        # Only the directories this script made, if nothing else is in them.
        for d in "$BIN_DIR" "$PREFIX/etc" "$PREFIX/var/lib" "$PREFIX/var"; do
            rmdir "$d" 2>/dev/null || true
        done
    fi
    say "the StatusMonitor agent is uninstalled"
    exit 0
fi

# ---- install or upgrade ----

case $SERVER in
http://?* | https://?*) SERVER=${SERVER%/} ;;
*) die "--server must be an http:// or https:// URL, not '$SERVER'" ;;
esac
case $SERVER in *[!]A-Za-z0-9.:/_~%[-]*) die "--server '$SERVER' has characters a server URL cannot have" ;; esac
if [ -n "$TOKEN" ]; then
    case $TOKEN in
    sma_?*) ;;
    *) die "the token must be an agent token starting with sma_ (copy it from the dashboard's agent page)" ;;
    esac
    case $TOKEN in *[!A-Za-z0-9_]*) die "the token has characters an agent token never has (copy it again from the dashboard)" ;; esac
elif [ ! -f "$CONF" ]; then
    die "a first install needs --token sma_... (create an agent in the dashboard to get one)"
fi
if [ -n "$CA_CERT" ]; then
    [ -r "$CA_CERT" ] || die "cannot read the CA certificate $CA_CERT"
    grep -q -- '-----BEGIN CERTIFICATE-----' "$CA_CERT" || die "$CA_CERT holds no PEM certificate"
fi

OS=$(uname -s)
[ "$OS" = Linux ] || die "this server's agents are for Linux; this is $OS (build the agent from source for it)"
if [ -z "$ARCH" ]; then
    case $(uname -m) in
    x86_64 | amd64) ARCH=x86_64 ;;
    aarch64 | arm64 | armv8*) ARCH=aarch64 ;;
    armv7* | armhf) ARCH=armv7 ;;
    *) ARCH=$(uname -m) ;;
    esac
fi
case $ARCH in '' | *[!a-z0-9_]*) die "unknown architecture '$ARCH'" ;; esac
PLATFORM=linux-$ARCH

if [ -z "$PREFIX" ]; then need_root "installing into $BIN_DIR and $CONF_DIR"; fi
if has_systemd; then need_root "installing the systemd service"; fi

# fetch URL FILE: curl, else wget; TLS as the agent will do it (--ca-cert).
fetch() {
    if command -v curl >/dev/null 2>&1; then
        if [ -n "$CA_CERT" ]; then
            curl -fsS --proto '=http,https' --cacert "$CA_CERT" -o "$2" "$1"
        else
            curl -fsS --proto '=http,https' -o "$2" "$1"
        fi
    elif command -v wget >/dev/null 2>&1; then
        if [ -n "$CA_CERT" ]; then
            wget -q --ca-certificate="$CA_CERT" -O "$2" "$1"
        else
            wget -q -O "$2" "$1"
        fi
    else
        die "neither curl nor wget is installed: install one of them"
    fi
}

sha256_of() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -d ' ' -f 1
    elif command -v shasum >/dev/null 2>&1; then
        shasum -a 256 "$1" | cut -d ' ' -f 1
    elif command -v openssl >/dev/null 2>&1; then
        openssl dgst -sha256 -r "$1" | cut -d ' ' -f 1
    else
        die "no sha256sum, shasum or openssl to check the download with"
    fi
}

# TMP := a new temporary file in DIR, removed on exit unless moved into place.
# (Not a command substitution: the list of files to remove must be this
# shell's.)
temp_in() {
    TMP=$(mktemp "$1/.$NAME.XXXXXX") || die "cannot write to $1 (read-only or full?)"
    TMP_FILES="$TMP_FILES $TMP"
}

mkdir -p "$BIN_DIR" || die "cannot create $BIN_DIR"

temp_in "$BIN_DIR"
SUMS=$TMP
fetch "$SERVER/download/agent/SHA256SUMS" "$SUMS" \
    || die "cannot download $SERVER/download/agent/SHA256SUMS: is the server reachable, and was it built with its agents? (open that URL in a browser for the reason)"
EXPECTED=$(sed -n "s/^\([0-9a-f]\{64\}\)  $NAME-$PLATFORM\$/\1/p" "$SUMS")
if [ -z "$EXPECTED" ]; then
    HAS=$(sed -n "s/^[0-9a-f]\{64\}  $NAME-\([a-z0-9_-]*\)\$/\1/p" "$SUMS" | tr '\n' ' ')
    die "unknown architecture $PLATFORM: this server has agents for: ${HAS:-nothing}"
fi

temp_in "$BIN_DIR"
NEW=$TMP
fetch "$SERVER/download/agent/$PLATFORM" "$NEW" \
    || die "cannot download $SERVER/download/agent/$PLATFORM (disk full, or the server went away?)"
GOT=$(sha256_of "$NEW")
if [ "$GOT" != "$EXPECTED" ]; then
    die "checksum mismatch for $PLATFORM: the download has SHA-256 $GOT, the server lists $EXPECTED; nothing was installed"
fi
chmod 0755 "$NEW"
"$NEW" --version >/dev/null 2>&1 || die "the downloaded agent does not run on this machine ($PLATFORM); nothing was installed"

# The config: systemd reads it as root before starting the agent under a
# dynamic user. An existing one is kept; a given token (and server, CA)
# replaces only those lines. Written to temporary files first, and moved into
# place together with the binary.
# The directory stays readable (0755): the service reads ca.pem from it.
mkdir -p "$CONF_DIR" || die "cannot create $CONF_DIR"
umask 077
CONF_TMP=''
CA_TMP=''
if [ -n "$TOKEN" ]; then
    if [ -n "$CA_CERT" ]; then
        temp_in "$CONF_DIR"
        CA_TMP=$TMP
        cp "$CA_CERT" "$CA_TMP" || die "cannot copy the CA certificate into $CONF_DIR (full?); nothing was installed"
        chmod 0644 "$CA_TMP"
    fi
    temp_in "$CONF_DIR"
    CONF_TMP=$TMP
    {
        if [ -f "$CONF" ]; then
            if [ -n "$CA_CERT" ]; then
                grep -v -e '^STATUSMONITOR_AGENT_SERVER=' -e '^STATUSMONITOR_AGENT_TOKEN=' \
                    -e '^STATUSMONITOR_AGENT_CA_CERT=' "$CONF" || true
            else
                grep -v -e '^STATUSMONITOR_AGENT_SERVER=' -e '^STATUSMONITOR_AGENT_TOKEN=' "$CONF" || true
            fi
        else
            say "# StatusMonitor agent settings (see statusmonitor-agent --help). Root-only: holds the token."
        fi
        say "STATUSMONITOR_AGENT_SERVER=$SERVER"
        say "STATUSMONITOR_AGENT_TOKEN=$TOKEN"
        if [ -n "$CA_CERT" ]; then say "STATUSMONITOR_AGENT_CA_CERT=$CONF_DIR/ca.pem"; fi
    } >"$CONF_TMP" || die "cannot write $CONF_DIR (full?); nothing was installed"
    chmod 0600 "$CONF_TMP"
fi

UPGRADE=no
[ -f "$BIN" ] && UPGRADE=yes
mv -f "$NEW" "$BIN" || die "cannot move the agent into $BIN"
say "installed $BIN ($("$BIN" --version 2>/dev/null), SHA-256 $GOT)"
if [ -n "$CA_TMP" ]; then mv -f "$CA_TMP" "$CONF_DIR/ca.pem" || die "cannot write $CONF_DIR/ca.pem"; fi
if [ -n "$CONF_TMP" ]; then
    mv -f "$CONF_TMP" "$CONF" || die "cannot write $CONF"
    say "wrote the config $CONF (root only)"
else
    say "kept the config $CONF"
fi

if has_systemd; then
    temp_in /etc/systemd/system
    UNIT_TMP=$TMP
    print_unit >"$UNIT_TMP" || die "cannot write $UNIT"
    chmod 0644 "$UNIT_TMP"
    mv -f "$UNIT_TMP" "$UNIT"
    systemctl daemon-reload
    systemctl enable "$NAME" >/dev/null 2>&1 || die "systemctl enable $NAME failed"
    systemctl restart "$NAME" || die "systemctl restart $NAME failed: see journalctl -u $NAME"
    if [ "$UPGRADE" = yes ]; then
        say "upgraded and restarted the service $NAME; it reports to $SERVER"
    else
        say "installed, enabled and started the service $NAME; it reports to $SERVER"
    fi
    say "logs: journalctl -u $NAME -f"
    exit 0
fi

mkdir -p "$(dirname "$SPOOL")" || true
if [ "$SYSTEMD" = no ]; then
    say "not installing a systemd service (--no-systemd)."
else
    say "this machine does not run systemd, so no service was installed."
fi
say "Run the agent with:"
say "  sh -c 'set -a; . $CONF; exec $BIN run --spool-dir $SPOOL'"
exit 0
