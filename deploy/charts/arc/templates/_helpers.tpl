{{/* Names, labels, images and the shared pieces of ARC's pod specs. */}}

{{- define "arc.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's full name: object names are "<fullname>-<component>". */}}
{{- define "arc.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "arc.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object; call with (dict "root" $ "component" "apiserver"). */}}
{{- define "arc.labels" -}}
helm.sh/chart: {{ include "arc.chart" .root }}
{{ include "arc.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: arc
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end -}}
{{- end -}}

{{- define "arc.selectorLabels" -}}
app.kubernetes.io/name: {{ include "arc.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end -}}
{{- end -}}

{{/* An image reference from {repository, tag, digest}; call with (dict "image" .Values.image "root" $). */}}
{{- define "arc.image" -}}
{{- $tag := .image.tag | default .root.Chart.AppVersion -}}
{{- if .image.digest -}}
{{- printf "%s:%s@%s" .image.repository $tag .image.digest -}}
{{- else -}}
{{- printf "%s:%s" .image.repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "arc.etcd.fullname" -}}{{ include "arc.fullname" . }}-etcd{{- end -}}
{{- define "arc.etcd.headless" -}}{{ include "arc.fullname" . }}-etcd-headless{{- end -}}

{{/* The etcd client URLs the API server uses: every member of the chart's etcd, or externalEtcd.endpoints. */}}
{{- define "arc.etcd.servers" -}}
{{- if .Values.etcd.enabled -}}
{{- $urls := list -}}
{{- range $i := until (int .Values.etcd.replicas) -}}
{{- $urls = append $urls (printf "https://%s-%d.%s.%s.svc:2379" (include "arc.etcd.fullname" $) $i (include "arc.etcd.headless" $) $.Release.Namespace) -}}
{{- end -}}
{{- join "," $urls -}}
{{- else -}}
{{- join "," .Values.externalEtcd.endpoints -}}
{{- end -}}
{{- end -}}

{{/* Secret with the etcd client certificate (ca.crt, tls.crt, tls.key). */}}
{{- define "arc.etcd.clientSecret" -}}
{{- if .Values.etcd.enabled -}}
{{ include "arc.fullname" . }}-etcd-client
{{- else -}}
{{ .Values.externalEtcd.secretName }}
{{- end -}}
{{- end -}}

{{/* Anti-affinity of a component; call with (dict "root" $ "component" "apiserver" "mode" "soft"). */}}
{{- define "arc.antiAffinity" -}}
{{- $term := dict "topologyKey" "kubernetes.io/hostname" "labelSelector" (dict "matchLabels" (include "arc.selectorLabels" . | fromYaml)) -}}
{{- if eq .mode "hard" -}}
podAntiAffinity:
  requiredDuringSchedulingIgnoredDuringExecution:
    - {{ toYaml $term | nindent 6 | trim }}
{{- else if eq .mode "soft" -}}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        {{- toYaml $term | nindent 8 }}
{{- end -}}
{{- end -}}

{{/* The pod-level securityContext of Pod Security "restricted". */}}
{{- define "arc.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The container-level securityContext of Pod Security "restricted", read-only root filesystem. */}}
{{- define "arc.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "arc.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The rules of one RBAC object in a manifest of deploy/ (linked under files/), so the chart and deploy/
     grant exactly the same. Call with (list $ "files/controllers-rbac.yaml" "ClusterRole" "arc-controller-manager"). */}}
{{- define "arc.rulesFrom" -}}
{{- $root := index . 0 -}}{{- $file := index . 1 -}}{{- $kind := index . 2 -}}{{- $name := index . 3 -}}
{{- $found := list -}}
{{- range $doc := regexSplit "(?m)^---[ \t]*$" ($root.Files.Get $file) -1 -}}
{{- $obj := fromYaml $doc -}}
{{- if and (eq (toString $obj.kind) $kind) (eq (toString (dig "metadata" "name" "" $obj)) $name) -}}
{{- $found = append $found $obj.rules -}}
{{- end -}}
{{- end -}}
{{- if ne (len $found) 1 -}}
{{- fail (printf "chart bug: %s %s not found exactly once in %s" $kind $name $file) -}}
{{- end -}}
{{- toYaml (first $found) -}}
{{- end -}}

{{/* Labels of an RBAC object in a deploy/ manifest (the aggregation labels of the user roles). */}}
{{- define "arc.labelsFrom" -}}
{{- $root := index . 0 -}}{{- $file := index . 1 -}}{{- $kind := index . 2 -}}{{- $name := index . 3 -}}
{{- range $doc := regexSplit "(?m)^---[ \t]*$" ($root.Files.Get $file) -1 -}}
{{- $obj := fromYaml $doc -}}
{{- if and (eq (toString $obj.kind) $kind) (eq (toString (dig "metadata" "name" "" $obj)) $name) -}}
{{- with (dig "metadata" "labels" dict $obj) }}{{ toYaml . }}{{ end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* etcdctl's client configuration; call with (dict "root" $ "endpoints" "..."). */}}
{{- define "arc.etcdctl.env" -}}
- name: ETCDCTL_ENDPOINTS
  value: {{ .endpoints }}
- name: ETCDCTL_CACERT
  value: /etc/etcd/tls/ca.crt
- name: ETCDCTL_CERT
  value: /etc/etcd/tls/tls.crt
- name: ETCDCTL_KEY
  value: /etc/etcd/tls/tls.key
- name: ETCDCTL_COMMAND_TIMEOUT
  value: 300s
{{- end -}}

{{/* OpenTelemetry export of both ARC processes (values: tracing), as the standard OTEL_* variables. */}}
{{- define "arc.tracingEnv" -}}
{{- with .Values.tracing }}
{{- if .endpoint -}}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ .endpoint | quote }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ .protocol | quote }}
- name: OTEL_TRACES_SAMPLER
  value: parentbased_traceidratio
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ .samplingRate | toString | quote }}
{{- end }}
{{- end }}
{{- end -}}
