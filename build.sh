#!/usr/bin/env bash
# Build, test and demonstrate the Defender for Cloud SIEM forwarder.
#
#   ./build.sh          build the linux/amd64 handler and the deployable app folder + zip (dist/)
#   ./build.sh test     install what the tests need, then go vet, go test -race, short fuzz runs
#   ./build.sh run      play the bundled sample batches through the handler to local receivers
#   ./build.sh bench    run the Go benchmarks, then the benchmark tool against the built handler
#   ./build.sh soak     the long fault drills, then a 10-minute memory soak of the handler
#
# Test tools are installed on demand: Azurite from the npm registry into .tools/, rsyslog and
# friends from Debian packages. Everything the tests start listens on 127.0.0.1 only.
set -euo pipefail

cd "$(dirname "$0")"
ROOT=$PWD
DIST=$ROOT/dist
APP=$DIST/app
TOOLS=$ROOT/.tools
AZURITE_VERSION=3.35.0
FUZZTIME=${FUZZTIME:-5s}

log() { printf '==> %s\n' "$*" >&2; }

build() {
  log "building handler (linux/amd64, static)"
  rm -rf "$APP"
  mkdir -p "$APP"
  # Stamp the git revision that `handler version` prints, even where GOFLAGS turns stamping off,
  # but only where git can read the checkout (a copy without .git still builds).
  local vcs=false
  if git -C "$ROOT" status --porcelain >/dev/null 2>&1; then vcs=auto; fi
  CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath -buildvcs=$vcs -ldflags "-s -w" -o "$APP/handler" ./handler
  cp host.json "$APP/"
  for fn in functions/*/; do
    name=$(basename "$fn")
    mkdir -p "$APP/$name"
    cp "$fn/function.json" "$APP/$name/"
  done
  cp local.settings.json.example "$APP/local.settings.json.example"
  cat >"$APP/.funcignore" <<'IGNORE'
local.settings.json
local.settings.json.example
*.go
go.mod
go.sum
testdata/
IGNORE
  rm -f "$DIST/forwarder.zip"
  (cd "$APP" && zip -qr "$DIST/forwarder.zip" . -x local.settings.json -x local.settings.json.example -x .funcignore)
  log "app folder: $APP   zip: $DIST/forwarder.zip"
}

need_apt() {
  local missing=()
  command -v rsyslogd >/dev/null || missing+=(rsyslog)
  [ -e /usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so ] || missing+=(rsyslog-gnutls)
  [ -e /usr/lib/x86_64-linux-gnu/rsyslog/imrelp.so ] || missing+=(rsyslog-relp)
  command -v lognormalizer >/dev/null || missing+=(liblognorm-utils)
  command -v openssl >/dev/null || missing+=(openssl)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  # The package starts the system rsyslog on some machines; the tests run their own instances
  # and never touch it.
}

need_azurite() {
  if [ ! -x "$TOOLS/node_modules/.bin/azurite-table" ]; then
    command -v npm >/dev/null || { log "npm is required to install Azurite"; exit 1; }
    log "installing Azurite $AZURITE_VERSION from the npm registry into .tools/"
    mkdir -p "$TOOLS"
    npm install --prefix "$TOOLS" --no-audit --no-fund --loglevel=error "azurite@$AZURITE_VERSION" >/dev/null
  fi
}

# peer_app prints the event-hubs-hec folder of the Node peer (splunk/azure-functions-splunk,
# unmodified, its locked npm dependencies installed) that `bench` measures beside the handler.
# PEER_DIR names a checkout; without one it is cloned into .tools/. Where neither works the
# benchmark runs without the peer and says so.
PEER_DIR=${PEER_DIR:-$TOOLS/azure-functions-splunk}
peer_app() {
  local app=$PEER_DIR/event-hubs-hec
  if [ ! -f "$app/diagnostic_logs/index.js" ]; then
    log "the Node peer: cloning splunk/azure-functions-splunk into $PEER_DIR"
    if ! timeout 120 git clone -q --depth 1 https://github.com/splunk/azure-functions-splunk "$PEER_DIR" >&2; then
      log "could not get the Node peer; set PEER_DIR to a checkout of splunk/azure-functions-splunk to measure it"
      return 1
    fi
  fi
  if [ ! -d "$app/node_modules/axios" ]; then
    log "the Node peer: installing its locked dependencies from the npm registry"
    npm ci --prefix "$app" --no-audit --no-fund --loglevel=error >&2 || return 1
  fi
  log "the Node peer: $(git -C "$PEER_DIR" log -1 --format='%h %cs' 2>/dev/null || echo 'not a git checkout')"
  echo "$app"
}

# check_layout fails when a product package depends on the tooling under internal/dev, or when
# go.mod and go.sum are not what go mod tidy would write.
check_layout() {
  log "import rule: no product package imports internal/dev"
  local module bad
  module=$(go list -m)
  bad=$(go list -deps ./handler | grep "^$module/internal/dev" || true)
  if [ -n "$bad" ]; then
    echo "the handler depends on tooling packages:" >&2
    echo "$bad" >&2
    exit 1
  fi
  log "go mod tidy -diff"
  if ! go mod tidy -diff >&2; then
    echo "go.mod/go.sum are not tidy: run go mod tidy" >&2
    exit 1
  fi
}

# fuzz_once runs one fuzz target for FUZZTIME, its output in .tools/fuzz.log.
fuzz_once() {
  go test -run '^$' -fuzz "^${2}\$" -fuzztime "$FUZZTIME" "$1" >"$TOOLS/fuzz.log" 2>&1
}

run_tests() {
  need_apt
  need_azurite
  log "gofmt"
  local unformatted
  unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.tools/*'))
  if [ -n "$unformatted" ]; then
    echo "gofmt would change:" >&2
    echo "$unformatted" >&2
    exit 1
  fi
  log "go vet"
  go vet ./...
  check_layout
  log "go test -race"
  mkdir -p "$TOOLS"
  go test -race -count=1 -timeout 20m ./... 2>&1 | tee "$TOOLS/test.log"
  local passed fuzzed=0
  passed=$(grep -c '^ok ' "$TOOLS/test.log" || true)
  log "fuzzing each target for $FUZZTIME"
  local pkg target
  while read -r pkg; do
    for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
      log "  $pkg $target"
      if ! fuzz_once "$pkg" "$target"; then
        # The Go fuzzer sometimes reports its own end-of-time deadline as a failure ("context
        # deadline exceeded", no failing input written) on a loaded machine: run that target
        # once more. A real failure writes its input under testdata/fuzz and fails both times.
        if grep -q 'context deadline exceeded' "$TOOLS/fuzz.log" && ! grep -q 'Failing input written to' "$TOOLS/fuzz.log"; then
          log "  $target: the fuzzer's own deadline, not a failing input; running it again"
          if fuzz_once "$pkg" "$target"; then
            fuzzed=$((fuzzed + 1))
            continue
          fi
        fi
        cat "$TOOLS/fuzz.log" >&2
        exit 1
      fi
      fuzzed=$((fuzzed + 1))
    done
  done < <(go list ./...)
  log "all tests passed; $fuzzed fuzz targets ran without a failure"
  echo "packages: $passed passed, 0 failed"
}

run_demo() {
  need_azurite
  build
  log "playing the sample batches through the handler"
  go run ./internal/dev/cmd/demo -handler "$APP/handler" -app "$APP" -azurite "$TOOLS/node_modules/.bin/azurite-table"
}

case "${1:-build}" in
  build) build ;;
  test) run_tests ;;
  run) run_demo ;;
  bench)
    need_azurite
    build
    log "Go benchmarks, one core"
    GOMAXPROCS=1 go test -run '^$' -bench . -benchmem ./internal/pipeline ./internal/alert ./internal/hostproto ./internal/format/... ./internal/dev/cmd/bench
    peer=()
    if app=$(peer_app); then peer=(-peer "$app"); fi
    log "benchmark tool: the real handler, three destinations, HEC alone and the Node peer"
    go run ./internal/dev/cmd/bench -handler "$APP/handler" -app "$APP" -azurite "$TOOLS/node_modules/.bin/azurite-table" "${peer[@]}"
    log "benchmark tool: the JSON layer against encoding/json, goccy/go-json and sonic, one core"
    GOMAXPROCS=1 go run ./internal/dev/cmd/bench -json
    log "the same built with GOEXPERIMENT=jsonv2 (encoding/json/v2)"
    GOEXPERIMENT=jsonv2 GOMAXPROCS=1 go run ./internal/dev/cmd/bench -json
    log "benchmark tool: gzip, compress/gzip against klauspost/compress"
    GOMAXPROCS=1 go run ./internal/dev/cmd/bench -gzip
    ;;
  soak)
    need_apt
    need_azurite
    build
    log "fault drills, long variant"
    DRILLS_SOAK=1 go test -race -count=1 -timeout 60m ./internal/dev/drills
    log "memory soak: 1000-event batches for 10 minutes"
    go run ./internal/dev/cmd/bench -handler "$APP/handler" -app "$APP" -azurite "$TOOLS/node_modules/.bin/azurite-table" -soak 10m
    ;;
  *) echo "usage: $0 [build|test|run|bench|soak]" >&2; exit 2 ;;
esac
