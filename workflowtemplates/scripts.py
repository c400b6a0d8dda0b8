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

#: helm, OCI source: the chart is an OCI artifact already; skopeo copies it byte for byte (digest preserved).
HELM_COPY_OCI = (
    PRELUDE
    + _CHECK_COMMON
    + _HELM_TAG
    + r"""src="docker://$src_reg/$SPEC_CHART:$tag"
dst="docker://$dst_reg/$SPEC_CHART:$tag"
"""
    + _skopeo_copy()
    + _EXEC_SKOPEO
)

#: helm, classic repository source (index.yaml over HTTP(S)): helm pull, then helm push to the OCI
#: destination.
HELM_COPY_CLASSIC = (
    PRELUDE
    + _CHECK_COMMON
    + _HELM_TAG
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
log "helm $*"
exec helm "$@"
"""
)

#: file: fetch with curl, verify the optional sha256, build a one-file OCI artifact (the layout `oras push`
#: makes: empty config, one layer titled with the file name) and push it with skopeo.
FILE_COPY = (
    PRELUDE
    + _CHECK_COMMON
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
    + _EXEC_SKOPEO
)
