#!/usr/bin/env bash
# Build ops/simulator/main.go (ceso's ESXi simulator) against Debian's govmomi source in GOPATH
# mode, caching the binary by content:
#   ${CESO_SIM_CACHE:-$HOME/.cache/ceso}/vcsim-<16 hex of sha256(main.go, go version, govmomi version)>
# plus a stable symlink .../vcsim pointing at it. Does nothing if the cached binary exists.
# The last line on stdout is the binary path. Works from any cwd.
# Concurrent runs are serialised on an flock of $cache/build.lock.
# Env: CESO_SIM_CACHE (cache dir), CESO_GOCODE (GOPATH entry holding govmomi; /usr/share/gocode).
set -euo pipefail

die() { echo "build.sh: $*" >&2; exit 1; }

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$here/main.go"
cache="${CESO_SIM_CACHE:-$HOME/.cache/ceso}"
gocode="${CESO_GOCODE:-/usr/share/gocode}"

[[ -f "$src" ]] || die "missing $src"
command -v go >/dev/null 2>&1 || die "go toolchain not found on PATH (Debian: apt-get install golang-go)"
[[ -d "$gocode/src/github.com/vmware/govmomi/simulator" ]] ||
    die "govmomi source not found under $gocode (Debian: apt-get install golang-github-vmware-govmomi-dev)"

go_version="$(go version)"
if govmomi_version="$(dpkg-query -W -f='${Version}' golang-github-vmware-govmomi-dev 2>/dev/null)" &&
    [[ -n "$govmomi_version" ]]; then
    :
else
    # No dpkg record (e.g. a hand-made GOPATH): fingerprint the source tree by names, sizes, mtimes.
    govmomi_version="tree:$(cd "$gocode/src" && find . -name '*.go' -printf '%P %s %T@\n' | LC_ALL=C sort |
        sha256sum | cut -c1-64)"
fi

key="$({ sha256sum <"$src" | cut -d' ' -f1; echo "$go_version"; echo "$govmomi_version"; } |
    sha256sum | cut -c1-16)"
bin="$cache/vcsim-$key"

mkdir -p "$cache"
# Parallel test processes (pytest-xdist) may all ask at once: one builds, the others wait for it
# and then find the binary, instead of each running a cold Go build on the same cores.
exec 9>"$cache/build.lock"
flock 9
if [[ ! -x "$bin" ]]; then
    work="$(mktemp -d "$cache/build.XXXXXX")"
    trap 'rm -rf "$work"' EXIT
    mkdir -p "$work/gopath/src/ceso-vcsim"
    cp "$src" "$work/gopath/src/ceso-vcsim/main.go"
    echo "build.sh: building $bin" >&2
    (
        cd "$work/gopath/src/ceso-vcsim"
        GO111MODULE=off GOPATH="$work/gopath:$gocode" GOCACHE="$cache/gocache" GOFLAGS= CGO_ENABLED=0 \
            go build -trimpath -ldflags=-buildid= -o "$work/vcsim" . >&2
    ) || die "go build failed (see above)"
    mv -f "$work/vcsim" "$bin"   # atomic: concurrent builders each rename a complete binary
fi

# Stable name, replaced atomically.
ln -sfn "$(basename "$bin")" "$cache/vcsim.tmp.$$"
mv -Tf "$cache/vcsim.tmp.$$" "$cache/vcsim"

echo "$bin"
