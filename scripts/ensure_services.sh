#!/usr/bin/env bash
# Make sure the real services the test suite talks to are installed and answering:
#   - PostgreSQL on 127.0.0.1:5432, user postgres with trust auth on loopback
#   - NATS with JetStream on 127.0.0.1:4222
#   - Debian's chromium at /usr/bin/chromium (for the Playwright console tests)
# With --bench also nginx-light and wrk (benchmarks only).
#
# Fast when everything is already there: no apt call at all. Uses sudo only when not root.
set -euo pipefail

PG_HOST=127.0.0.1
PG_PORT=5432
NATS_HOST=127.0.0.1
NATS_PORT=4222
NATS_STORE_DIR=/var/lib/nats-server
NATS_PIDFILE=/run/adtrack-nats-server-${NATS_PORT}.pid
WAIT_SECONDS=60

want_bench=0
for arg in "$@"; do
    case "$arg" in
        --bench) want_bench=1 ;;
        -h | --help)
            sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
            echo "usage: $0 [--bench]"
            exit 0
            ;;
        *)
            echo "ensure_services: unknown argument: $arg" >&2
            exit 2
            ;;
    esac
done

say() { printf 'services: %s\n' "$*"; }
die() {
    printf 'services: ERROR: %s\n' "$*" >&2
    exit 1
}

if [[ $(id -u) -eq 0 ]]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    SUDO=()
fi
as_root() {
    if [[ $(id -u) -ne 0 && ${#SUDO[@]} -eq 0 ]]; then
        die "need root for: $* (run as root or install sudo)"
    fi
    "${SUDO[@]}" "$@"
}

apt_updated=0
apt_install() {
    say "installing Debian packages: $*"
    # Waits for a dpkg lock held by another apt run instead of failing at once.
    local -a apt=(env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -q)
    if [[ $apt_updated -eq 0 ]]; then
        as_root "${apt[@]}" update >/dev/null
        apt_updated=1
    fi
    as_root "${apt[@]}" install -y --no-install-recommends "$@" >/dev/null
}

# True when something accepts TCP connections on host:port (bash's /dev/tcp, no extra tools).
port_open() {
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

wait_until() {
    local what=$1
    shift
    local deadline=$((SECONDS + WAIT_SECONDS))
    until "$@"; do
        if ((SECONDS >= deadline)); then
            die "$what did not answer within ${WAIT_SECONDS}s"
        fi
        sleep 0.5
    done
}

# --- PostgreSQL ----------------------------------------------------------------------------------

pg_version() {
    # The newest installed major version (normally exactly one).
    ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1
}

pg_answers() {
    if command -v pg_isready >/dev/null 2>&1; then
        pg_isready -q -h "$PG_HOST" -p "$PG_PORT"
    else
        port_open "$PG_HOST" "$PG_PORT"
    fi
}

pg_trusts_postgres() {
    PGPASSWORD='' psql -w -X -q -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres \
        -c 'select 1' >/dev/null 2>&1
}

pg_allow_trust() {
    local version=$1
    local hba=/etc/postgresql/$version/main/pg_hba.conf
    [[ -f $hba ]] || die "no $hba to edit for trust auth"
    say "adding trust auth for user postgres on loopback to $hba"
    # Rules are matched top-down, so ours go first.
    local rules
    rules=$'# adtrack tests: user postgres connects over loopback without a password\n'
    rules+=$'host all postgres 127.0.0.1/32 trust\nhost all postgres ::1/128 trust\n'
    local tmp
    tmp=$(mktemp)
    { printf '%s' "$rules"; as_root cat "$hba"; } >"$tmp"
    as_root cp "$tmp" "$hba"
    rm -f "$tmp"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload
}

ensure_postgres() {
    if ! pg_answers; then
        local version
        version=$(pg_version)
        if [[ -z $version ]] || ! command -v pg_ctlcluster >/dev/null 2>&1; then
            apt_install postgresql
            version=$(pg_version)
            [[ -n $version ]] || die "postgresql installed but /etc/postgresql is empty"
        fi
        if [[ ! -d /etc/postgresql/$version/main ]]; then
            say "creating PostgreSQL $version cluster 'main'"
            as_root pg_createcluster "$version" main >/dev/null
        fi
        say "starting PostgreSQL $version"
        local out
        if ! out=$(as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>&1); then
            # e.g. "already running" while it is still starting up: keep waiting, but show why.
            say "pg_ctlcluster: $out"
        fi
        wait_until "PostgreSQL on $PG_HOST:$PG_PORT" pg_answers
    fi
    if ! command -v psql >/dev/null 2>&1; then
        say "psql not found: not checking trust auth"
    elif ! pg_trusts_postgres; then
        pg_allow_trust "$(pg_version)"
        wait_until "PostgreSQL trust auth for user postgres" pg_trusts_postgres
    fi
    say "PostgreSQL ok ($PG_HOST:$PG_PORT)"
}

# --- NATS with JetStream -------------------------------------------------------------------------

nats_answers() {
    # A NATS server greets every new connection with an INFO line.
    local greeting
    greeting=$(
        exec 2>/dev/null
        exec 3<>"/dev/tcp/$NATS_HOST/$NATS_PORT" || exit 1
        IFS= read -r -t 2 line <&3 || exit 1
        printf '%s' "$line"
    ) || return 1
    [[ $greeting == INFO* ]]
}

ensure_nats() {
    if ! nats_answers; then
        if [[ ! -x /usr/sbin/nats-server ]]; then
            apt_install nats-server
        fi
        say "starting nats-server with JetStream"
        as_root mkdir -p "$NATS_STORE_DIR"
        # The pid file keeps start-stop-daemon from mistaking another nats-server (a test's own,
        # on another port) for this one.
        as_root start-stop-daemon --start --oknodo --background \
            --pidfile "$NATS_PIDFILE" --make-pidfile --exec /usr/sbin/nats-server -- \
            -a "$NATS_HOST" -p "$NATS_PORT" -js -sd "$NATS_STORE_DIR" -l /var/log/nats-server.log
        wait_until "NATS on $NATS_HOST:$NATS_PORT" nats_answers
    fi
    say "NATS ok ($NATS_HOST:$NATS_PORT)"
}

# --- Browser and benchmark tools -----------------------------------------------------------------

ensure_chromium() {
    if [[ ! -x /usr/bin/chromium ]]; then
        apt_install chromium fonts-liberation
        [[ -x /usr/bin/chromium ]] || die "chromium installed but /usr/bin/chromium is missing"
    fi
    say "chromium ok (/usr/bin/chromium)"
}

ensure_bench_tools() {
    local -a missing=()
    [[ -x /usr/sbin/nginx ]] || missing+=(nginx-light)
    command -v wrk >/dev/null 2>&1 || missing+=(wrk)
    if ((${#missing[@]} > 0)); then
        apt_install "${missing[@]}"
    fi
    say "benchmark tools ok (nginx, wrk)"
}

# The scale-out failure tests start (and stop) PostgreSQL and nats-server instances of their own.
ensure_server_binaries() {
    local -a missing=()
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
    [[ -x /usr/sbin/nats-server ]] || missing+=(nats-server)
    if ((${#missing[@]} > 0)); then
        apt_install "${missing[@]}"
    fi
    say "server binaries ok (initdb, pg_ctl, nats-server)"
}

ensure_postgres
ensure_nats
ensure_server_binaries
ensure_chromium
if ((want_bench)); then
    ensure_bench_tools
fi
