#!/bin/sh
# Entry point of compose's mosquitto (eclipse-mosquitto image, busybox sh, runs as root
# until mosquitto drops to its own user).
#
# `bidao broker-credentials --watch` (the broker-auth service) writes the password and ACL
# files into the shared volume /broker-auth whenever a device is added, removed or re-keyed.
# This script waits for the first pair, installs them where mosquitto.conf points (owned by
# mosquitto, mode 0600, renamed into place), starts mosquitto, and every
# BROKER_AUTH_POLL_S seconds compares the shared files with what it installed: on a change
# it installs the new pair and sends mosquitto SIGHUP, which makes it re-read both files
# without dropping a connection. SIGTERM from `docker compose stop` is passed to mosquitto,
# which saves its persistence file before it exits.
set -eu

# The defaults are the container's paths; tests/deploy/test_entrypoint.py moves them.
SHARED="${BROKER_AUTH_SHARED:-/broker-auth}"
AUTH="${BROKER_AUTH_DIR:-/mosquitto/auth}"
DATA="${MOSQUITTO_DATA:-/mosquitto/data}"
CONF="${MOSQUITTO_CONF:-/mosquitto/config/mosquitto.conf}"
OWNER="${BROKER_AUTH_OWNER:-mosquitto:mosquitto}"
POLL_S="${BROKER_AUTH_POLL_S:-5}"

stamp() {
	cat "$SHARED/passwd" "$SHARED/acl" | md5sum
}

install_files() {
	for name in passwd acl; do
		cp "$SHARED/$name" "$AUTH/.$name.new"
		chown "$OWNER" "$AUTH/.$name.new"
		chmod 0600 "$AUTH/.$name.new"
		mv "$AUTH/.$name.new" "$AUTH/$name"
	done
}

# As process 1 of the container, a signal without a handler would be ignored.
trap 'exit 143' TERM INT
until [ -s "$SHARED/passwd" ] && [ -s "$SHARED/acl" ]; do
	echo "waiting for $SHARED/passwd and $SHARED/acl (bidao broker-credentials)"
	sleep 1
done
mkdir -p "$AUTH"
chown "$OWNER" "$AUTH" "$DATA"
chmod 0700 "$AUTH"
installed="$(stamp)"
install_files

"${MOSQUITTO:-/usr/sbin/mosquitto}" -c "$CONF" &
pid=$!
sleeper=""
trap 'kill -TERM "$pid" 2>/dev/null; [ -z "$sleeper" ] || kill "$sleeper" 2>/dev/null; wait "$pid"; exit $?' TERM INT

while kill -0 "$pid" 2>/dev/null; do
	sleep "$POLL_S" &
	sleeper=$!
	wait "$sleeper" || true
	sleeper=""
	current="$(stamp)"
	if [ "$current" != "$installed" ]; then
		install_files
		installed="$current"
		kill -HUP "$pid"
		echo "broker credentials changed: mosquitto re-reads them"
	fi
done
wait "$pid"
