"""The POSIX shell scripts the workflow steps run (``/bin/sh -c <script>``).

Why scripts and environment variables instead of ``{{workflow.parameters.x}}`` inside the command line:
parameter values come from tenants' Orders, so they must never become shell text. Argo substitutes them into
the step's ``env`` (JSON-escaped), and the scripts only ever expand them as quoted ``"$VARIABLES"``. The same
scripts run unchanged in the integration tests (tests/integration/workflowtemplates/), against real
registries, with the credential directories pointed elsewhere through ``ARC_SRC_AUTH_DIR`` and
``ARC_DST_AUTH_DIR``.

Rules for editing: POSIX sh only (the images have bash, busybox ash; the tests run dash); never ``{{`` (Argo
would substitute it); anything that can fail is assigned to a variable first (``x=$(f)``), because a failing
command substitution inside ``set -- …`` would not stop the script.
"""

from __future__ import annotations

#: Helpers every step script starts with.
PRELUDE = r"""set -eu
fail() { printf 'arc: %s\n' "$*" >&2; exit 2; }
log() { printf 'arc: %s\n' "$*" >&2; }
need() { [ -n "$2" ] || fail "parameter $1 is required"; }
need_bool() {
  case "$2" in true|false) ;; *) fail "parameter $1 must be \"true\" or \"false\", got \"$2\"" ;; esac
}
# host[/path] of an Endpoint's remoteURL: scheme and trailing slashes removed.
host_path() { _r=${1#*://}; while [ "${_r%/}" != "$_r" ]; do _r=${_r%/}; done; printf '%s' "$_r"; }
# base URL of an Endpoint's remoteURL: https:// unless it names a scheme, no trailing slash.
base_url() {
  _r=$1; while [ "${_r%/}" != "$_r" ]; do _r=${_r%/}; done
  case "$_r" in *://*) printf '%s' "$_r" ;; *) printf 'https://%s' "$_r" ;; esac
}
# TLS verification of one side: never over plain http://, else as configured.
tls_verify() { case "$1" in http://*) printf false ;; *) printf '%s' "$2" ;; esac; }
# The mounted dockerconfigjson of one side (its Secret, mounted read-only by the Workflow).
authfile() {
  _f="$2/.dockerconfigjson"
  [ -r "$_f" ] || fail "$1 credentials missing: $_f (the Secret must be a kubernetes.io/dockerconfigjson)"
  printf '%s' "$_f"
}
# "user:password" of the dockerconfigjson ($1) entry for registry host $2 (host[:port]), and of no other:
# a credential is sent only to the host it was stored for (skopeo, helm registry and trivy look theirs up
# by host the same way). An entry the parser cannot delimit (braces in a value) is not used: fail closed.
basic_auth() {
  case "$2" in ''|*[!]A-Za-z0-9.:[-]*) fail "cannot match credentials to host \"$2\"" ;; esac
  _k=$(printf '%s' "$2" | sed 's#[].[]#\\&#g')
  _j=$(tr -d ' \t\r\n' <"$1")
  _a=
  for _p in '' 'https://' 'http://'; do
    for _s in '' '/'; do
      [ -z "$_a" ] || continue
      _e=$(printf '%s\n' "$_j" | sed -n "s#.*\"$_p$_k$_s\":{\\([^{}]*\\)}.*#\\1#p")
      _a=$(printf '%s\n' "$_e" | sed -n 's#.*"auth":"\([A-Za-z0-9+/=]*\)".*#\1#p')
    done
  done
  [ -n "$_a" ] || fail "no credentials for $2 in $1 (a Secret's credentials go only to the host they are for)"
  printf '%s' "$_a" | base64 -d
}
"""

#: Where a step writes its evidence, one file per Argo output parameter (see :data:`OUTPUTS`). The helpers
#: start every file empty, so a parameter a step does not reach is "" (its valueFrom default too).
EVIDENCE = r"""out_dir=${ARC_OUTPUT_DIR:-/tmp/arc-outputs}
mkdir -p "$out_dir"
for _o in sourceRef sourceDigest destinationRef destinationDigest platforms signatureKey signedDigest \
  referrers tools; do : >"$out_dir/$_o"; done
emit() { printf '%s' "$2" >"$out_dir/$1"; }
emit_line() { printf '%s\n' "$2" >>"$out_dir/$1"; }
digest_of() { _d=$(sha256sum <"$1"); printf 'sha256:%s' "${_d%% *}"; }
tool_version() { # name, then the version line its --version prints (first match of a version number)
  _v=$(printf '%s\n' "$2" | grep -o 'v\{0,1\}[0-9][0-9]*\.[0-9][0-9.]*[^ ]*' | head -n 1) || _v=unknown
  emit_line tools "$1 ${_v:-unknown}"
}
# skopeo with one side's TLS setting and credentials: skopeo_side src|dst <command> <args…>
skopeo_side() {
  _side=$1; _cmd=$2; shift 2
  if [ "$_side" = src ]; then
    _tls=$(tls_verify "$SRC_REMOTE_URL" "$SPEC_TLS_VERIFY_SRC"); _use=$SRC_SECRET; _dir=$ARC_SRC_AUTH_DIR
    _w=source
  else
    _tls=$(tls_verify "$DST_REMOTE_URL" "$SPEC_TLS_VERIFY_DST"); _use=$DST_SECRET; _dir=$ARC_DST_AUTH_DIR
    _w=destination
  fi
  if [ "$_use" = true ]; then
    _f=$(authfile "$_w" "$_dir")
    skopeo "$_cmd" "--tls-verify=$_tls" --authfile "$_f" "$@"
  else
    skopeo "$_cmd" "--tls-verify=$_tls" --no-creds "$@"
  fi
}
# The manifest digest a reference resolves to now (the bytes the registry serves, hashed here).
resolve_digest() { # side, reference without transport, file to keep the manifest in
  skopeo_side "$1" inspect --raw --retry-times 3 "docker://$2" >"$3" || return 1
  digest_of "$3"
}
"""

_CHECK_COMMON = r"""need_bool srcSecret "$SRC_SECRET"
need_bool dstSecret "$DST_SECRET"
need_bool specTlsVerifySrc "$SPEC_TLS_VERIFY_SRC"
need_bool specTlsVerifyDst "$SPEC_TLS_VERIFY_DST"
src_reg=$(host_path "$SRC_REMOTE_URL"); need srcRemoteURL "$src_reg"
dst_reg=$(host_path "$DST_REMOTE_URL"); need dstRemoteURL "$dst_reg"
"""


def _skopeo_copy(*, from_registry: bool = True) -> str:
    """Arguments of a skopeo copy of "$src" to "$dst", credentials from the mounted files.

    ``from_registry=False``: the source is a local OCI layout (no TLS, no credentials, a single manifest).
    """
    lines = [
        "set -- copy --preserve-digests --retry-times 3 \\\n",
        '  "--dest-tls-verify=$(tls_verify "$DST_REMOTE_URL" "$SPEC_TLS_VERIFY_DST")"\n',
        'if [ "$DST_SECRET" = true ]; then\n',
        '  f=$(authfile destination "$ARC_DST_AUTH_DIR"); set -- "$@" --dest-authfile "$f"\n',
        "else\n",
        '  set -- "$@" --dest-no-creds\n',
        "fi\n",
    ]
    if from_registry:
        lines += [
            'set -- "$@" --all "--src-tls-verify=$(tls_verify "$SRC_REMOTE_URL" "$SPEC_TLS_VERIFY_SRC")"\n',
            'if [ "$SRC_SECRET" = true ]; then\n',
            '  f=$(authfile source "$ARC_SRC_AUTH_DIR"); set -- "$@" --src-authfile "$f"\n',
            "else\n",
            '  set -- "$@" --src-no-creds\n',
            "fi\n",
        ]
    return "".join(lines)


# Makes skopeo read and write cosign-style signature attachments (the "sha256-<hex>.sig" tags).
_SIGSTORE_ATTACHMENTS = r"""regd=$(mktemp -d)
printf 'default-docker:\n  use-sigstore-attachments: true\n' >"$regd/default.yaml"
set -- --registries.d "$regd" "$@"
"""

_EXEC_SKOPEO = r"""log "skopeo $* $src $dst"
exec skopeo "$@" "$src" "$dst"
"""


def oci_copy(*, signatures: bool = False) -> str:
    """oci: copy ``specImage`` (all architectures, digests preserved); with ``signatures`` also its
    cosign signature attachments."""
    body = (
        _CHECK_COMMON
        + r"""need specImage "$SPEC_IMAGE"
src="docker://$src_reg/$SPEC_IMAGE"
dst="docker://$dst_reg/${SPEC_DST_IMAGE:-$SPEC_IMAGE}"
"""
        + _skopeo_copy()
        + (_SIGSTORE_ATTACHMENTS if signatures else "")
        + _EXEC_SKOPEO
    )
    return PRELUDE + body


#: Exit code of a failed signature gate (no signature, wrong key, digest mismatch): a verdict, not retried.
VERIFY_GATE_EXIT_CODE = 4

#: The repository and reference of an image name: repo:tag, repo@sha256:… or repo (tag latest).
_SPLIT_IMAGE = r"""split_image() { # image → sets _repo and _ref (":tag" or "@sha256:…")
  case "$1" in
    *@*) _repo=${1%%@*}; _ref="@${1#*@}" ;;
    *) _last=${1##*/}
       case "$_last" in *:*) _repo=${1%:*}; _ref=":${_last##*:}" ;; *) _repo=$1; _ref=":latest" ;; esac ;;
  esac
}
"""

#: cosign's signature gate on the resolved digest ($src_repo, $digest), before anything is pushed: the
#: signature tag must exist (else "no signature", or "digest mismatch" when the repository has signatures
#: for other digests only — a tag re-pushed after signing), and verify with the type's key (else "wrong
#: key"). Offline: no transparency log, no keyless lookups.
_VERIFY = r"""if [ -n "$VERIFY_COSIGN_PUBLIC_KEY" ]; then
  keyfile="$work/cosign.pub"; printf '%s\n' "$VERIFY_COSIGN_PUBLIC_KEY" >"$keyfile"
  # The key's identity: the SHA-256 of its DER SubjectPublicKeyInfo (what the PEM body encodes), so the
  # same key has the same fingerprint whatever whitespace its ConfigMap value has.
  sed '/^-----/d' "$keyfile" | tr -d ' \t\r\n' | base64 -d >"$work/cosign.der" 2>/dev/null \
    || fail "verifyCosignPublicKey is not a PEM public key"
  [ -s "$work/cosign.der" ] || fail "verifyCosignPublicKey is not a PEM public key"
  key_sum=$(digest_of "$work/cosign.der")
  key_id="${VERIFY_COSIGN_KEY_IDENTITY:-cosign.pub} $key_sum"
  sig_tag="$(printf '%s' "$digest" | tr : -).sig"
  if ! skopeo_side src inspect --raw "docker://$src_reg/$src_repo:$sig_tag" >"$work/sig.json" 2>/dev/null
  then
    others=$(skopeo_side src list-tags "docker://$src_reg/$src_repo" 2>/dev/null \
      | grep -o '"sha256-[0-9a-f]*\.sig"' | tr -d '"' | sed 's/^sha256-/sha256:/; s/\.sig$//' \
      | tr '\n' ' ') || others=
    if [ -n "$others" ]; then
      log "signature gate: digest mismatch: $src_reg/$src_repo$src_ref resolves to $digest, which has no" \
        "signature; the repository's signatures are for $others(re-pushed after signing?)"
      exit @EXIT@
    fi
    log "signature gate: no signature: $src_reg/$src_repo@$digest has no cosign signature ($sig_tag)"
    exit @EXIT@
  fi
  cosign_config=$(mktemp -d)
  if [ "$SRC_SECRET" = true ]; then
    f=$(authfile source "$ARC_SRC_AUTH_DIR"); cp "$f" "$cosign_config/config.json"
  fi
  set -- verify --key "$keyfile" --insecure-ignore-tlog=true --offline=true --output text
  if [ "$(tls_verify "$SRC_REMOTE_URL" "$SPEC_TLS_VERIFY_SRC")" = false ]; then
    set -- "$@" --allow-insecure-registry --allow-http-registry
  fi
  log "cosign $* $src_reg/$src_repo@$digest"
  if ! DOCKER_CONFIG=$cosign_config cosign "$@" "$src_reg/$src_repo@$digest" \
    >"$work/verify.out" 2>"$work/verify.err"; then
    sed 's/^/cosign: /' "$work/verify.err" >&2
    log "signature gate: wrong key: the signature of $src_reg/$src_repo@$digest does not verify with $key_id"
    exit @EXIT@
  fi
  if ! grep -q "$digest" "$work/verify.out"; then
    log "signature gate: digest mismatch: the verified signature does not name $digest"
    exit @EXIT@
  fi
  log "signature gate: $src_reg/$src_repo@$digest verified with $key_id"
  emit signatureKey "$key_id"
  emit signedDigest "$digest"
  tool_version cosign "$(cosign version 2>&1 | grep GitVersion)"
fi
""".replace("@EXIT@", str(VERIFY_GATE_EXIT_CODE))

#: Per-platform digests of an index ($work/dst.json) at "$dst_reg/$dst_repo": "os/arch[/variant] digest".
_PLATFORMS = r"""if grep -q '"manifests"' "$work/dst.json"; then
  children=$(grep -o '"digest" *: *"sha256:[0-9a-f]\{64\}"' "$work/dst.json" | grep -o 'sha256:[0-9a-f]*')
  for child in $children; do
    platform=unknown
    if skopeo_side dst inspect --raw --config "docker://$dst_reg/$dst_repo@$child" >"$work/config.json" \
      2>/dev/null; then
      c=$(tr -d ' \t\r\n' <"$work/config.json")
      os=$(printf '%s' "$c" | sed -n 's/.*"os":"\([^"]*\)".*/\1/p')
      arch=$(printf '%s' "$c" | sed -n 's/.*"architecture":"\([^"]*\)".*/\1/p')
      variant=$(printf '%s' "$c" | sed -n 's/.*"variant":"\([^"]*\)".*/\1/p')
      [ -z "$arch" ] || platform="${os:-unknown}/$arch${variant:+/$variant}"
    fi
    emit_line platforms "$platform $child"
  done
fi
"""

#: cosign's attachment tags (sha256-<hex>.sig/.att/.sbom) of $digest, copied byte for byte and checked.
_REFERRERS = (
    r"""if [ "$SPEC_COPY_REFERRERS" = true ]; then
  for kind in sig att sbom; do
    tag="$(printf '%s' "$digest" | tr : -).$kind"
    skopeo_side src inspect --raw "docker://$src_reg/$src_repo:$tag" >"$work/$kind.json" 2>/dev/null \
      || continue
    want=$(digest_of "$work/$kind.json")
"""
    + _skopeo_copy()
    + r"""log "skopeo $* docker://$src_reg/$src_repo@$want docker://$dst_reg/$dst_repo:$tag"
    skopeo "$@" "docker://$src_reg/$src_repo@$want" "docker://$dst_reg/$dst_repo:$tag"
    got=$(resolve_digest dst "$dst_reg/$dst_repo:$tag" "$work/$kind.dst.json") || fail "cannot read back $tag"
    [ "$got" = "$want" ] || fail "digest mismatch: $kind $tag is $want at the source, $got at the destination"
    emit_line referrers "$kind $got $dst_reg/$dst_repo:$tag"
  done
  # OCI 1.1 referrers (the referrers API, or its sha256-<hex> tag fallback): oras copies the graph.
  if command -v oras >/dev/null 2>&1; then
    # oras' flags for one side's TLS: plain HTTP for an http:// URL, else --insecure when not verified.
    oras_tls() { # remoteURL, tlsVerify, flag prefix ("from-", "to-" or "")
      case "$1" in
        http://*) printf -- '--%splain-http' "$3" ;;
        *) [ "$2" = true ] || printf -- '--%sinsecure' "$3" ;;
      esac
    }
    set -- cp --recursive --no-tty
    t=$(oras_tls "$SRC_REMOTE_URL" "$SPEC_TLS_VERIFY_SRC" from-); [ -z "$t" ] || set -- "$@" "$t"
    t=$(oras_tls "$DST_REMOTE_URL" "$SPEC_TLS_VERIFY_DST" to-); [ -z "$t" ] || set -- "$@" "$t"
    if [ "$SRC_SECRET" = true ]; then
      f=$(authfile source "$ARC_SRC_AUTH_DIR"); set -- "$@" --from-registry-config "$f"
    fi
    if [ "$DST_SECRET" = true ]; then
      f=$(authfile destination "$ARC_DST_AUTH_DIR"); set -- "$@" --to-registry-config "$f"
    fi
    log "oras $* $src_reg/$src_repo@$digest $dst_reg/$dst_repo@$digest"
    oras "$@" "$src_reg/$src_repo@$digest" "$dst_reg/$dst_repo@$digest" >&2
    set -- discover --format json --no-tty
    t=$(oras_tls "$DST_REMOTE_URL" "$SPEC_TLS_VERIFY_DST" ""); [ -z "$t" ] || set -- "$@" "$t"
    if [ "$DST_SECRET" = true ]; then
      f=$(authfile destination "$ARC_DST_AUTH_DIR"); set -- "$@" --registry-config "$f"
    fi
    oras "$@" "$dst_reg/$dst_repo@$digest" >"$work/referrers.json"
    for ref in $(grep -o '"digest" *: *"sha256:[0-9a-f]\{64\}"' "$work/referrers.json" \
      | grep -o 'sha256:[0-9a-f]*'); do
      emit_line referrers "referrer $ref $dst_reg/$dst_repo@$ref"
    done
    tool_version oras "$(oras version | grep -i '^version')"
  fi
fi
"""
)


def _copy_verified(select: str) -> str:
    """Resolve ``$src_image`` (below the source registry) to a digest, gate on its signature, copy
    exactly that digest (all architectures, digests preserved) to ``$dst_image``, check the destination
    serves the same digest, copy the referrers the type asks for, and write the evidence
    (:data:`EVIDENCE`). ``select`` checks the step's parameters and sets ``src_image``/``dst_image``."""
    return (
        PRELUDE
        + EVIDENCE
        + _SPLIT_IMAGE
        + _CHECK_COMMON
        + select
        + r"""need_bool specCopyReferrers "$SPEC_COPY_REFERRERS"
work=$(mktemp -d)
split_image "$src_image"; src_repo=$_repo; src_ref=$_ref
split_image "$dst_image"; dst_repo=$_repo; dst_ref=$_ref
tool_version skopeo "$(skopeo --version)"
digest=$(resolve_digest src "$src_reg/$src_repo$src_ref" "$work/src.json") \
  || fail "cannot resolve $src_reg/$src_repo$src_ref"
case "$src_ref" in
  @*) [ "$digest" = "${src_ref#@}" ] || fail "digest mismatch: the source serves $digest for $src_ref" ;;
esac
log "resolved $src_reg/$src_repo$src_ref to $digest"
emit sourceRef "$src_reg/$src_repo$src_ref"
emit sourceDigest "$digest"
"""
        + _VERIFY
        + r"""case "$dst_ref" in @*) dst_ref="@$digest" ;; esac
src="docker://$src_reg/$src_repo@$digest"
dst="docker://$dst_reg/$dst_repo$dst_ref"
"""
        + _skopeo_copy()
        + r"""log "skopeo $* $src $dst"
skopeo "$@" "$src" "$dst"
got=$(resolve_digest dst "$dst_reg/$dst_repo$dst_ref" "$work/dst.json") \
  || fail "cannot read back $dst_reg/$dst_repo$dst_ref"
[ "$got" = "$digest" ] || fail "digest mismatch: copied $digest, the destination serves $got"
log "copied $digest to $dst_reg/$dst_repo$dst_ref"
emit destinationRef "$dst_reg/$dst_repo$dst_ref"
emit destinationDigest "$got"
"""
        + _PLATFORMS
        + _REFERRERS
    )


def oci_copy_verified() -> str:
    """oci: :func:`_copy_verified` of ``specImage`` to ``specDstImage`` (default: the same name)."""
    return _copy_verified(
        r"""need specImage "$SPEC_IMAGE"
src_image=$SPEC_IMAGE
dst_image=${SPEC_DST_IMAGE:-$SPEC_IMAGE}
"""
    )


#: Exit code of the scan step when it finds vulnerabilities (the gate's verdict, never retried).
SCAN_GATE_EXIT_CODE = 3

OCI_SCAN = (
    PRELUDE
    + _CHECK_COMMON
    + r"""need specImage "$SPEC_IMAGE"
need specScanSeverity "$SPEC_SCAN_SEVERITY"
ref="$src_reg/$SPEC_IMAGE"
DOCKER_CONFIG=$(mktemp -d); export DOCKER_CONFIG
if [ "$SRC_SECRET" = true ]; then
  f=$(authfile source "$ARC_SRC_AUTH_DIR"); cp "$f" "$DOCKER_CONFIG/config.json"
fi
set -- image --image-src remote --scanners vuln --no-progress \
  --exit-code """
    + str(SCAN_GATE_EXIT_CODE)
    + r""" --severity "$SPEC_SCAN_SEVERITY"
[ "$(tls_verify "$SRC_REMOTE_URL" "$SPEC_TLS_VERIFY_SRC")" = true ] || set -- "$@" --insecure
[ -z "$SPEC_SCAN_DB_REPOSITORY" ] || set -- "$@" --db-repository "$SPEC_SCAN_DB_REPOSITORY"
log "trivy $* $ref"
exec trivy "$@" "$ref"
"""
)

_HELM_TAG = r"""need specChart "$SPEC_CHART"
need specVersion "$SPEC_VERSION"
tag=$(printf '%s' "$SPEC_VERSION" | tr + _)
"""

#: helm, OCI source: the chart is an OCI artifact already; copied like an image (digest resolved first,
#: signature gate, byte for byte, destination digest checked, evidence written).
HELM_COPY_OCI = _copy_verified(
    _HELM_TAG
    + r"""src_image="$SPEC_CHART:$tag"
dst_image="$SPEC_CHART:$tag"
"""
)

#: A step that cannot verify signatures refuses to run when the type asks for it: the gate fails closed.
_NO_COSIGN_GATE = r"""if [ -n "$VERIFY_COSIGN_PUBLIC_KEY" ]; then
  log "signature gate: not possible here: @WHY@"
  exit @EXIT@
fi
""".replace("@EXIT@", str(VERIFY_GATE_EXIT_CODE))

#: helm, classic repository source (index.yaml over HTTP(S)): helm pull, then helm push to the OCI
#: destination.
HELM_COPY_CLASSIC = (
    PRELUDE
    + EVIDENCE
    + _CHECK_COMMON
    + _HELM_TAG
    + _NO_COSIGN_GATE.replace(
        "@WHY@", "a classic chart repository has no cosign signatures (use an OCI source)"
    )
    + r"""case "$SPEC_CHART" in
  */*) fail "specChart must be a chart name in a classic repository, got \"$SPEC_CHART\"" ;;
esac
repo=$(base_url "$SRC_REMOTE_URL")
work=$(mktemp -d)
HELM_CONFIG_HOME="$work/config" HELM_CACHE_HOME="$work/cache" HELM_DATA_HOME="$work/data"
export HELM_CONFIG_HOME HELM_CACHE_HOME HELM_DATA_HOME
set -- repo add arc-source "$repo"
[ "$(tls_verify "$SRC_REMOTE_URL" "$SPEC_TLS_VERIFY_SRC")" = true ] || set -- "$@" --insecure-skip-tls-verify
log "helm $*"
if [ "$SRC_SECRET" = true ]; then
  # helm sends these only to the repository's host: charts the index lists elsewhere are fetched without
  # them (no --pass-credentials), and Go drops them on a redirect to another host.
  f=$(authfile source "$ARC_SRC_AUTH_DIR"); creds=$(basic_auth "$f" "${src_reg%%/*}")
  printf '%s' "${creds#*:}" | helm "$@" --username "${creds%%:*}" --password-stdin
else
  helm "$@"
fi
mkdir "$work/chart"
set -- pull "arc-source/$SPEC_CHART" --version "$SPEC_VERSION" --destination "$work/chart"
log "helm $*"
helm "$@"
chart=
for f in "$work"/chart/*.tgz; do chart=$f; done
[ -f "$chart" ] || fail "helm pull produced no chart archive"
set -- push "$chart" "oci://$dst_reg"
case "$DST_REMOTE_URL" in http://*) set -- "$@" --plain-http ;; esac
[ "$SPEC_TLS_VERIFY_DST" = true ] || set -- "$@" --insecure-skip-tls-verify
if [ "$DST_SECRET" = true ]; then
  f=$(authfile destination "$ARC_DST_AUTH_DIR"); set -- "$@" --registry-config "$f"
fi
chart_sum=$(digest_of "$chart")
emit sourceRef "$repo/$SPEC_CHART-$SPEC_VERSION"
emit sourceDigest "$chart_sum"
tool_version helm "$(helm version --short)"
log "helm $*"
pushed=$(helm "$@" 2>&1) || { printf '%s\n' "$pushed" >&2; fail "helm push failed"; }
printf '%s\n' "$pushed" >&2
ref=$(printf '%s\n' "$pushed" | sed -n 's/^Pushed: *//p' | head -n 1)
got=$(printf '%s\n' "$pushed" | sed -n 's/^Digest: *//p' | head -n 1)
[ -n "$ref" ] && [ -n "$got" ] || fail "helm push did not report what it pushed"
emit destinationRef "$ref"
emit destinationDigest "$got"
"""
)

#: file: fetch with curl, verify the optional sha256, build a one-file OCI artifact (the layout `oras push`
#: makes: empty config, one layer titled with the file name) and push it with skopeo.
FILE_COPY = (
    PRELUDE
    + EVIDENCE
    + _CHECK_COMMON
    + _NO_COSIGN_GATE.replace(
        "@WHY@", "a file is checked by its checksum (specSha256), not a cosign signature"
    )
    + r"""need specUrl "$SPEC_URL"
need specArtifact "$SPEC_ARTIFACT"
need specMediaType "$SPEC_MEDIA_TYPE"
base=$(base_url "$SRC_REMOTE_URL")
case "$SPEC_URL" in
  *://*)
    case "$SPEC_URL" in
      "$base"/*) url=$SPEC_URL ;;
      *) fail "specUrl \"$SPEC_URL\" is not below the source endpoint's URL \"$base\"" ;;
    esac ;;
  *) url="$base/${SPEC_URL#/}" ;;
esac
path=${url#*://}; path=${path%%\?*}; path=${path%%#*}
case "/$path/" in */../*|*/./*) fail "specUrl must not contain . or .. segments: \"$SPEC_URL\"" ;; esac
name=${SPEC_NAME:-${path##*/}}
case "$name" in
  ''|.|..|*[!A-Za-z0-9._+-]*) fail "file name \"$name\" must be of A-Z a-z 0-9 . _ + - (see specName)" ;;
esac
case "$SPEC_MEDIA_TYPE" in
  *[!A-Za-z0-9.+/_-]*) fail "specMediaType \"$SPEC_MEDIA_TYPE\" is not a media type" ;;
  [A-Za-z0-9]*/[A-Za-z0-9]*) ;;
  *) fail "specMediaType \"$SPEC_MEDIA_TYPE\" is not a media type" ;;
esac
want=$(printf '%s' "${SPEC_SHA256#sha256:}" | tr 'A-F' 'a-f')
case "$want" in
  '') ;;
  *[!0-9a-f]*) fail "specSha256 must be 64 hex digits, got \"$SPEC_SHA256\"" ;;
  *) [ ${#want} -eq 64 ] || fail "specSha256 must be 64 hex digits, got \"$SPEC_SHA256\"" ;;
esac
work=$(mktemp -d)
# Redirects are followed (mirrors and release hosts redirect to CDNs) but never to a weaker protocol, at
# most 5; curl sends the user's credentials only to the URL's own host, port and scheme (no
# --location-trusted), so a redirect elsewhere fetches without them.
case "$url" in https://*) redir="=https" ;; *) redir="=http,https" ;; esac
set -- --fail --silent --show-error --location --proto-redir "$redir" --max-redirs 5 --retry 3 \
  --output "$work/file"
[ "$(tls_verify "$SRC_REMOTE_URL" "$SPEC_TLS_VERIFY_SRC")" = true ] || set -- "$@" --insecure
log "curl $* $url"
if [ "$SRC_SECRET" = true ]; then
  f=$(authfile source "$ARC_SRC_AUTH_DIR"); creds=$(basic_auth "$f" "${src_reg%%/*}")
  printf 'user = "%s"\n' "$(printf '%s' "$creds" | sed 's/[\\"]/\\&/g')" | curl --config - "$@" "$url"
else
  curl "$@" "$url"
fi
sum=$(sha256sum "$work/file"); sum=${sum%% *}
if [ -n "$want" ] && [ "$sum" != "$want" ]; then
  fail "sha256 mismatch for $url: want $want, got $sum"
fi
log "fetched $url: sha256:$sum, $(($(wc -c <"$work/file"))) bytes"
emit sourceRef "${url%%[?#]*}"
emit sourceDigest "sha256:$sum"
tool_version curl "$(curl --version | head -n 1)"
layout="$work/layout"; mkdir -p "$layout/blobs/sha256"
blob() { _d=$(sha256sum "$1"); _d=${_d%% *}; cp "$1" "$layout/blobs/sha256/$_d"; printf '%s' "$_d"; }
size() { printf '%s' "$(($(wc -c <"$1")))"; }
printf '{}' >"$work/config"
config=$(blob "$work/config")
layer=$(blob "$work/file")
file_size=$(size "$work/file")
# The manifest and index, as JSON; every interpolated value was checked above or is a digest or a size.
{
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'
  printf '"artifactType":"application/vnd.opendefense.arc.file.v1",'
  printf '"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:%s","size":2},' "$config"
  printf '"layers":[{"mediaType":"%s",' "$SPEC_MEDIA_TYPE"
  printf '"digest":"sha256:%s","size":%s,' "$layer" "$file_size"
  printf '"annotations":{"org.opencontainers.image.title":"%s"}}]}' "$name"
} >"$work/manifest"
manifest=$(blob "$work/manifest")
manifest_size=$(size "$work/manifest")
printf '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
{
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json",'
  printf '"digest":"sha256:%s","size":%s,' "$manifest" "$manifest_size"
  printf '"annotations":{"org.opencontainers.image.ref.name":"arc"}}]}'
} >"$layout/index.json"
src="oci:$layout:arc"
dst="docker://$dst_reg/$SPEC_ARTIFACT"
"""
    + _skopeo_copy(from_registry=False)
    + r"""log "skopeo $* $src $dst"
skopeo "$@" "$src" "$dst"
got=$(resolve_digest dst "$dst_reg/$SPEC_ARTIFACT" "$work/pushed.json") || fail "cannot read back $dst"
[ "$got" = "sha256:$manifest" ] || fail "digest mismatch: pushed sha256:$manifest, the destination has $got"
emit destinationRef "$dst_reg/$SPEC_ARTIFACT"
emit destinationDigest "$got"
tool_version skopeo "$(skopeo --version)"
"""
)
