#!/usr/bin/env bash
# The local stack: a private PostgreSQL, a single-node Garage, a three-node Garage
# cluster and clamd (with the project's test signatures) on free loopback ports, the temp/quarantine/regular
# buckets, their lifecycle rules and the migrations.
#
#   deploy/local/stack.sh up     install what is missing, start, set up; idempotent
#   deploy/local/stack.sh down   stop everything this script started
#   deploy/local/stack.sh env    print the path of the env file the services read
#
# Everything lives under $UPLOAD_STACK_DIR (default: target/stack in the repository).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
dir=${UPLOAD_STACK_DIR:-$repo/target/stack}
envfile=$dir/stack.env
GARAGE_VERSION=2.5.0
# PostgreSQL runs as the postgres user, who may not reach into a checkout under a
# private directory: as root, its cluster lives under /tmp, named after this stack.
if [ "$(id -u)" = 0 ]; then
  pgdir=/tmp/upload-stack-pg-$(printf '%s' "$dir" | md5sum | cut -c1-12)
else
  pgdir=$dir/pg
fi

log() { printf '[stack] %s\n' "$*" >&2; }

hex() { python3 -c "import secrets; print(secrets.token_hex($1))"; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

alive() { [ -f "$1" ] && kill -0 "$(head -n1 "$1")" 2>/dev/null; }

pg_bin() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  return 1
}

install_missing() {
  # Debian's packages first, in one update and one install.
  local debs=()
  pg_bin >/dev/null || debs+=(postgresql)
  { [ -x /usr/bin/ffmpeg ] && [ -x /usr/bin/ffprobe ]; } || debs+=(ffmpeg)
  [ -x /usr/sbin/clamd ] || debs+=(clamav-daemon)
  # The browser tests: Debian's Chromium and Firefox ESR, driven by puppeteer-core
  # from npm (which downloads no browser of its own).
  [ -x /usr/bin/chromium ] || debs+=(chromium)
  [ -x /usr/bin/firefox-esr ] || debs+=(firefox-esr)
  if [ ${#debs[@]} -gt 0 ]; then
    log "installing ${debs[*]} from Debian's packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${debs[@]}" >/dev/null
  fi
  if ! command -v garage >/dev/null 2>&1 || ! garage --version 2>/dev/null | grep -q "$GARAGE_VERSION"; then
    log "installing garage $GARAGE_VERSION from crates.io (about 15 minutes on 2 cores, once)"
    cargo install garage --locked --version "$GARAGE_VERSION"
  fi
  if ! command -v cargo-nextest >/dev/null 2>&1; then
    log "installing cargo-nextest"
    cargo install cargo-nextest --locked
  fi
  # The supply-chain check (deny.toml) of the test command.
  if ! command -v cargo-deny >/dev/null 2>&1; then
    log "installing cargo-deny (a few minutes, once)"
    cargo install cargo-deny --locked
  fi
  # The web client's modules, as its lockfile says (again whenever it changes).
  local web=$repo/clients/web
  if ! cmp -s "$web/package-lock.json" "$web/node_modules/.installed-from-lock" 2>/dev/null; then
    log "installing the web client's modules (clients/web/package-lock.json)"
    (cd "$web" && npm ci --silent --no-audit --no-fund >/dev/null && cp package-lock.json node_modules/.installed-from-lock)
  fi
}

start_postgres() {
  local bin port
  bin=$(pg_bin)
  if alive "$pgdir/data/postmaster.pid"; then return 0; fi
  port=$(free_port)
  mkdir -p "$pgdir"
  if [ ! -f "$pgdir/data/PG_VERSION" ]; then
    rm -rf "$pgdir/data"
    mkdir -p "$pgdir/data" "$pgdir/sock"
    chown -R postgres:postgres "$pgdir" 2>/dev/null || true
    run_pg "$bin/initdb" -D "$pgdir/data" -U postgres --auth=trust -E UTF8 >/dev/null
  fi
  run_pg "$bin/pg_ctl" -D "$pgdir/data" -l "$pgdir/postgres.log" -w -t 30 start \
    -o "-p $port -k $pgdir/sock -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" >/dev/null
  echo "$port" > "$pgdir/port"
  log "postgres on 127.0.0.1:$port"
}

# initdb and pg_ctl refuse to run as root.
run_pg() {
  if [ "$(id -u)" = 0 ]; then
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

start_garage() {
  if alive "$dir/garage/pid"; then return 0; fi
  mkdir -p "$dir/garage/meta" "$dir/garage/data"
  local s3 rpc admin
  s3=$(free_port); rpc=$(free_port); admin=$(free_port)
  [ -f "$dir/garage/secrets" ] || {
    echo "rpc_secret=$(hex 32)"
    echo "admin_token=$(hex 24)"
    echo "access_key=GK$(hex 12)"
    echo "secret_key=$(hex 32)"
  } > "$dir/garage/secrets"
  # shellcheck disable=SC1091
  . "$dir/garage/secrets"
  cat > "$dir/garage/garage.toml" <<TOML
metadata_dir = "$dir/garage/meta"
data_dir = "$dir/garage/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$rpc"
rpc_public_addr = "127.0.0.1:$rpc"
rpc_secret = "$rpc_secret"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$s3"
root_domain = ".s3.localhost"

[admin]
api_bind_addr = "127.0.0.1:$admin"
admin_token = "$admin_token"
TOML
  GARAGE_DEFAULT_ACCESS_KEY=$access_key GARAGE_DEFAULT_SECRET_KEY=$secret_key \
    nohup garage -c "$dir/garage/garage.toml" server --single-node --default-access-key \
    > "$dir/garage/garage.log" 2>&1 &
  echo $! > "$dir/garage/pid"
  echo "$s3" > "$dir/garage/s3_port"
  for _ in $(seq 1 100); do
    garage -c "$dir/garage/garage.toml" status >/dev/null 2>&1 && break
    sleep 0.1
  done
  for _ in $(seq 1 100); do
    garage -c "$dir/garage/garage.toml" key info "$access_key" >/dev/null 2>&1 && break
    sleep 0.1
  done
  local b
  for b in temp quarantine regular; do
    garage -c "$dir/garage/garage.toml" bucket info "$b" >/dev/null 2>&1 \
      || garage -c "$dir/garage/garage.toml" bucket create "$b" >/dev/null
    garage -c "$dir/garage/garage.toml" bucket allow --read --write --owner "$b" --key "$access_key" >/dev/null
  done
  log "garage S3 API on 127.0.0.1:$s3"
}

# A three-node Garage cluster beside the single node: every object on all three
# nodes (replication_factor = 3), quorum reads and writes (consistent mode), the
# layout applied here, the single node's access key imported (so the same
# credentials work on both). Tests that run against it say so
# (AppOptions::cluster); they may stop and restart a node (its command line is in
# n<i>/cmd).
cluster_node_conf() {
  local i=$1 rpc=$2 s3=$3 admin=$4
  cat > "$dir/garage-cluster/n$i/garage.toml" <<TOML
metadata_dir = "$dir/garage-cluster/n$i/meta"
data_dir = "$dir/garage-cluster/n$i/data"
db_engine = "sqlite"
replication_factor = 3
consistency_mode = "consistent"
rpc_bind_addr = "127.0.0.1:$rpc"
rpc_public_addr = "127.0.0.1:$rpc"
rpc_secret = "$cluster_rpc_secret"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$s3"
root_domain = ".s3.localhost"

[admin]
api_bind_addr = "127.0.0.1:$admin"
admin_token = "$admin_token"
TOML
}

start_garage_cluster() {
  # shellcheck disable=SC1091
  . "$dir/garage/secrets"
  local c=$dir/garage-cluster i
  mkdir -p "$c"
  [ -f "$c/rpc_secret" ] || hex 32 > "$c/rpc_secret"
  cluster_rpc_secret=$(cat "$c/rpc_secret")
  for i in 1 2 3; do
    if alive "$c/n$i/pid"; then continue; fi
    mkdir -p "$c/n$i/meta" "$c/n$i/data"
    if [ ! -f "$c/n$i/ports" ]; then
      echo "$(free_port) $(free_port) $(free_port)" > "$c/n$i/ports"
    fi
    # shellcheck disable=SC2046
    cluster_node_conf "$i" $(cat "$c/n$i/ports")
    echo "garage -c $c/n$i/garage.toml server" > "$c/n$i/cmd"
    nohup garage -c "$c/n$i/garage.toml" server > "$c/n$i/garage.log" 2>&1 &
    echo $! > "$c/n$i/pid"
  done
  local g="garage -c $c/n1/garage.toml"
  for _ in $(seq 1 100); do $g status >/dev/null 2>&1 && break; sleep 0.1; done
  # A node just started answers `node id` once it is up: asked before, it says
  # nothing, and `node connect ""` fails the whole start-up.
  local ids=()
  for i in 1 2 3; do
    local id=""
    for _ in $(seq 1 100); do
      id=$(garage -c "$c/n$i/garage.toml" node id -q 2>/dev/null) && [ -n "$id" ] && break
      sleep 0.1
    done
    [ -n "$id" ] || { log "garage cluster node $i did not start: see $c/n$i/garage.log"; exit 1; }
    ids+=("$id")
  done
  for i in 1 2; do
    $g node connect "${ids[$i]}" >/dev/null
  done
  if ! $g layout show 2>/dev/null | grep -q "Current cluster layout version: [1-9]"; then
    for i in 0 1 2; do
      $g layout assign -z dc1 -c 10G "$(echo "${ids[$i]}" | cut -c1-16)" >/dev/null
    done
    $g layout apply --version 1 >/dev/null
  fi
  $g key info "$access_key" >/dev/null 2>&1 \
    || $g key import --yes -n upload-tests "$access_key" "$secret_key" >/dev/null
  $g key allow --create-bucket "$access_key" >/dev/null
  for _ in $(seq 1 200); do
    $g status 2>/dev/null | grep -q "FAILED NODES" || break
    sleep 0.1
  done
  log "garage cluster (3 nodes, 3 copies) S3 API on 127.0.0.1:$(cut -d' ' -f2 "$c/n1/ports")"
}

# The signatures and limits clamd runs with; a running clamd started with others
# (an older checkout) is restarted.
clamd_wanted() {
  cat "$repo/deploy/clamav/testdb/daily.cud" "$repo/deploy/clamav/upload-unscannable.ndb" \
    "$repo/deploy/clamav/scan-limits.conf" | sha256sum | cut -d' ' -f1
}

start_clamd() {
  mkdir -p "$dir/clamd"
  if alive "$dir/clamd/pid"; then
    if [ "$(cat "$dir/clamd/wanted" 2>/dev/null)" = "$(clamd_wanted)" ]; then return 0; fi
    log "clamd runs with other signatures or limits; restarting it"
    kill "$(cat "$dir/clamd/pid")"
    for _ in $(seq 1 100); do alive "$dir/clamd/pid" || break; sleep 0.1; done
  fi
  clamd_wanted > "$dir/clamd/wanted"
  local port
  port=$(free_port)
  # The project's test signatures (a versioned database, as the official daily one
  # is) and its own rules for containers clamd would skip in silence; the limits
  # and alerts every clamd of the service runs with (deploy/clamav/scan-limits.conf).
  rm -rf "$dir/clamd/db" && mkdir -p "$dir/clamd/db"
  cp "$repo/deploy/clamav/testdb/daily.cud" "$repo/deploy/clamav/upload-unscannable.ndb" "$dir/clamd/db/"
  {
    cat <<CONF
Foreground yes
TCPSocket $port
TCPAddr 127.0.0.1
DatabaseDirectory $dir/clamd/db
LogFile $dir/clamd/clamd.log
MaxThreads 4
CONF
    cat "$repo/deploy/clamav/scan-limits.conf"
  } > "$dir/clamd/clamd.conf"
  nohup /usr/sbin/clamd -c "$dir/clamd/clamd.conf" > "$dir/clamd/stdout.log" 2>&1 &
  echo $! > "$dir/clamd/pid"
  echo "$port" > "$dir/clamd/port"
  for _ in $(seq 1 100); do
    if python3 - "$port" <<'PY' 2>/dev/null
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
s.sendall(b"zPING\0")
sys.exit(0 if s.recv(16).startswith(b"PONG") else 1)
PY
    then
      log "clamd on 127.0.0.1:$port"
      return 0
    fi
    sleep 0.1
  done
  log "clamd did not answer; see $dir/clamd/clamd.log"
  return 1
}

write_env() {
  # shellcheck disable=SC1091
  . "$dir/garage/secrets"
  cat > "$envfile" <<ENV
UPLOAD_DATABASE_URL=postgres://postgres@127.0.0.1:$(cat "$pgdir/port")/upload
UPLOAD_ADMIN_DATABASE_URL=postgres://postgres@127.0.0.1:$(cat "$pgdir/port")/postgres
UPLOAD_S3_ENDPOINT=http://127.0.0.1:$(cat "$dir/garage/s3_port")
UPLOAD_S3_REGION=garage
UPLOAD_S3_ACCESS_KEY_ID=$access_key
UPLOAD_S3_SECRET_ACCESS_KEY=$secret_key
UPLOAD_BUCKET_TEMP=temp
UPLOAD_BUCKET_QUARANTINE=quarantine
UPLOAD_BUCKET_REGULAR=regular
UPLOAD_JWKS=$dir/keys/jwks.json
UPLOAD_JWT_ISSUER=upload-local
UPLOAD_JWT_AUDIENCE=upload-service
UPLOAD_CORS_ORIGINS=http://127.0.0.1:*,http://localhost:*
UPLOAD_CLAMD_ADDR=127.0.0.1:$(cat "$dir/clamd/port")
UPLOAD_MEDIA_IN_PROCESS=true
UPLOAD_CLUSTER_S3_ENDPOINT=http://127.0.0.1:$(cut -d' ' -f2 "$dir/garage-cluster/n1/ports")
UPLOAD_CLUSTER_DIR=$dir/garage-cluster
ENV
}

setup_service() {
  local port
  port=$(cat "$pgdir/port")
  psql -h 127.0.0.1 -p "$port" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'upload'" | grep -q 1 \
    || psql -h 127.0.0.1 -p "$port" -U postgres -qc "CREATE DATABASE upload" >/dev/null
  # Migrations and bucket rules come from the service's own setup command.
  set -a
  # shellcheck disable=SC1090
  . "$envfile"
  set +a
  (cd "$repo" && cargo run -q -p upload-server --bin upload-server -- setup)
  # The local token issuer: an Ed25519 key pair (kept across runs) and its JWKS;
  # `upload-server mint-token --signing-key $dir/keys/signing-key.pk8` signs with it.
  (cd "$repo" && cargo run -q -p upload-server --bin upload-server -- dev-keys --dir "$dir/keys")
}

case "${1:-up}" in
  up)
    mkdir -p "$dir"
    install_missing
    start_postgres
    start_garage
    start_garage_cluster
    start_clamd
    write_env
    setup_service
    log "ready; environment in $envfile"
    ;;
  down)
    if alive "$dir/clamd/pid"; then
      kill "$(cat "$dir/clamd/pid")"
      for _ in $(seq 1 100); do alive "$dir/clamd/pid" || break; sleep 0.1; done
      log "clamd stopped"
    fi
    for pid in "$dir/garage/pid" "$dir"/garage-cluster/n*/pid; do
      if alive "$pid"; then
        kill "$(cat "$pid")"
        for _ in $(seq 1 100); do alive "$pid" || break; sleep 0.1; done
        log "garage stopped ($(basename "$(dirname "$pid")"))"
      fi
    done
    if alive "$pgdir/data/postmaster.pid"; then
      run_pg "$(pg_bin)/pg_ctl" -D "$pgdir/data" -m fast -w stop >/dev/null && log "postgres stopped"
    fi
    ;;
  env)
    echo "$envfile"
    ;;
  *)
    echo "usage: $0 up|down|env" >&2
    exit 2
    ;;
esac
