#!/usr/bin/env bash
# Build the upstream programs ARC's local stack and tests run against, from their published Go modules
# at pinned versions, into a cache outside the checkout. Idempotent: a binary already in the cache is
# never rebuilt. Two builds run at a time (ARC_BUILD_JOBS; binaries of one repository one after the other in one
# job): the compiler keeps both cores of these machines busy most of a build, but not while a build resolves and
# downloads its module graph or links, and a second build fills those gaps (a cold `make setup` is most of a
# cold CI run). Each job's output goes to work/<repository>.log and is printed when it ends, never interleaved.
#
# Usage: hack/build-binaries.sh [name ...]   (default: every binary below)
# Env:   ARC_CACHE_DIR (default ~/.cache/arc) — bin/, go/mod (GOMODCACHE), go/build (GOCACHE), work/
#        ARC_BUILD_JOBS (default 2) — builds at a time
set -euo pipefail

# The binaries, their pinned versions and why: hack/binaries.txt (one line each).
HERE=$(cd "$(dirname "$0")" && pwd)
mapfile -t BINARIES < <(grep -v -e '^#' -e '^[[:space:]]*$' "$HERE/binaries.txt")

CACHE="${ARC_CACHE_DIR:-$HOME/.cache/arc}"
BIN="$CACHE/bin"
export GOMODCACHE="$CACHE/go/mod" GOCACHE="$CACHE/go/build" GOFLAGS="-mod=mod -buildvcs=false"
export CGO_ENABLED=0 GOTOOLCHAIN=local GOPROXY="${GOPROXY:-https://proxy.golang.org,direct}"
mkdir -p "$BIN" "$GOMODCACHE" "$GOCACHE" "$CACHE/work"

log() { printf '[build-binaries] %s\n' "$*"; }

# A fresh wrapper module directory for one binary; echoes its path.
wrapper_dir() {
  local dir="$CACHE/work/$1-$2"
  rm -rf "$dir" && mkdir -p "$dir"
  printf 'module arc.local/build\n\ngo 1.24\n' >"$dir/go.mod"
  echo "$dir"
}

build_module() { # name version module package out [extras]
  local dir item ldflags="-s -w" tags=""; dir=$(wrapper_dir "$1" "$2")
  (
    cd "$dir"
    go mod edit -require="$3@$2"
    # Optional last column, comma-separated: replace:old=new@version (a wrapper module must repeat the replace
    # directives of the dependency's go.mod, which Go ignores outside the main module), x:pkg.var=value
    # (an -X stamp a release build would write), tags:a+b (build tags, e.g. to leave out optional plugins)
    # and a bare pkg.var (stamped with the version, for --version).
    for item in ${6//,/ }; do
      case "$item" in
        replace:*) go mod edit -replace="${item#replace:}" ;;
        tags:*) tags="${item#tags:}"; tags="${tags//+/,}" ;;
        x:*) ldflags+=" -X ${item#x:}" ;;
        *) ldflags+=" -X $item=$2" ;;
      esac
    done
    go build -trimpath -tags="$tags" -ldflags="$ldflags" -o "$5" "$4"
  )
}

build_kubernetes() { # name version module package out
  local name=$1 version=$2 module=$3 package=$4 out=$5 dir minor staging
  dir=$(wrapper_dir "$name" "$version")
  minor=${version#v1.}; minor=${minor%%.*}
  staging="v0.${version#v1.}"
  (
    cd "$dir"
    go mod edit -require="$module@$version"
    # Every staging repo the release requires at exactly v0.0.0 is replaced by its published v0.X.Y tag;
    # pseudo-versions (k8s.io/utils v0.0.0-2025…) stay as they are.
    go mod download -json "$module@$version" >/dev/null
    gomod="$GOMODCACHE/cache/download/$module/@v/$version.mod"
    awk '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" {print $1}' "$gomod" | sort -u | while read -r m; do
      go mod edit -replace="$m=$m@$staging"
    done
    ldflags="-s -w"
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
      ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
    done
    go build -trimpath -ldflags="$ldflags" -o "$out" "$package"
  )
}

# One binary, start to end: build into a temporary name, then move it into place (a half-built binary is
# never in the cache).
build_one() { # name version module package recipe extras
  local out="$BIN/$1-$2" start=$SECONDS tmp
  tmp="$out.tmp.$$.$BASHPID"
  log "$1 $2: building from $3 ..."
  "build_$5" "$1" "$2" "$3" "$4" "$tmp" "${6:-}"
  mv "$tmp" "$out"
  log "$1 $2: built in $((SECONDS - start))s"
}

# The source repository of a module: binaries from one repository (kube-apiserver, kube-controller-manager and
# kube-scheduler; etcd, etcdctl and etcdutl; prometheus and promtool...) share most of their packages, so they
# build one after the other in one job and the second finds the first's packages in GOCACHE — two at once
# would compile the same packages twice.
repository_of() { # module
  local IFS=/ parts
  read -ra parts <<<"$1"
  if [[ ${parts[0]} == github.com ]]; then echo "${parts[0]}/${parts[1]}/${parts[2]}"; else echo "${parts[0]}/${parts[1]}"; fi
}

# The binaries still to build, grouped by repository (in binaries.txt's order).
want=("$@")
declare -a REPOSITORIES=() # in binaries.txt order
declare -A GROUP_LINES=() # repository -> the binaries.txt lines to build, newline-separated
for line in "${BINARIES[@]}"; do
  read -r name version module package recipe extras <<<"$line"
  if ((${#want[@]})) && [[ ! " ${want[*]} " == *" $name "* ]]; then continue; fi
  if [[ -x "$BIN/$name-$version" ]]; then
    log "$name $version: cached ($BIN/$name-$version)"
    continue
  fi
  repository=$(repository_of "$module")
  [[ -v "GROUP_LINES[$repository]" ]] || REPOSITORIES+=("$repository")
  GROUP_LINES[$repository]+="$line"$'\n'
done

build_group() { # repository
  local line name version module package recipe extras
  while read -r line; do
    [[ -n $line ]] || continue
    read -r name version module package recipe extras <<<"$line"
    build_one "$name" "$version" "$module" "$package" "$recipe" "${extras:-}"
  done <<<"${GROUP_LINES[$1]}"
}

JOBS=${ARC_BUILD_JOBS:-2}
declare -A RUNNING=() # pid -> repository
failed=0

# Wait for one running job, print its log and note a failure.
reap_one() {
  local pid status=0 log_file
  wait -n -p pid "${!RUNNING[@]}" || status=$?
  log_file="$CACHE/work/${RUNNING[$pid]//\//_}.log"
  cat "$log_file"
  if ((status != 0)); then
    log "${RUNNING[$pid]}: FAILED (exit $status; log $log_file)"
    failed=1
  fi
  unset "RUNNING[$pid]"
}

for repository in "${REPOSITORIES[@]}"; do
  while ((${#RUNNING[@]} >= JOBS)); do reap_one; done
  ((failed == 0)) || break
  build_group "$repository" >"$CACHE/work/${repository//\//_}.log" 2>&1 &
  RUNNING[$!]=$repository
done
while ((${#RUNNING[@]})); do reap_one; done
exit "$failed"
