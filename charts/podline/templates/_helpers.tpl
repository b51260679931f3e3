{{/*
Names and labels shared by every template.
*/}}

{{- define "podline.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every object name: the release name, plus the chart name unless the release name has it.
*/}}
{{- define "podline.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "podline.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "podline.selectorLabels" -}}
app.kubernetes.io/name: {{ include "podline.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "podline.labels" -}}
helm.sh/chart: {{ include "podline.chart" . }}
{{ include "podline.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: podline
{{- end }}

{{- define "podline.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "podline.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "podline.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Cross-field rules values.schema.json cannot state clearly; each failure says what to change.
*/}}
{{/* Where operator.registryCA's ConfigMap key is mounted, read-only; PODLINE_REGISTRY_CA_FILE names the file. */}}
{{- define "podline.registryCADir" -}}/etc/podline/registry-ca{{- end }}
{{- define "podline.registryCAName" -}}ca.pem{{- end }}
{{- define "podline.registryCAFile" -}}{{ include "podline.registryCADir" . }}/{{ include "podline.registryCAName" . }}{{- end }}

{{/* Whether the operator serves its archive: archive.enabled and archive.serve.enabled ("true"/"false"). */}}
{{- define "podline.archiveServed" -}}
{{- and .Values.archive.enabled .Values.archive.serve.enabled | toString }}
{{- end }}

{{- define "podline.validate" -}}
{{- if and (eq .Values.rbac.scope "namespaces") (not .Values.watchNamespaces) }}
{{- fail "rbac.scope is \"namespaces\" but watchNamespaces is empty: list the namespaces the operator serves, e.g. --set 'watchNamespaces={ci,team-a}'" }}
{{- end }}
{{- if and (eq .Values.rbac.scope "cluster") .Values.watchNamespaces }}
{{- fail "watchNamespaces is set but rbac.scope is \"cluster\": set rbac.scope=namespaces to serve only those namespaces, or empty watchNamespaces to serve all" }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.enabled) }}
{{- fail "metrics.serviceMonitor.enabled needs metrics.enabled=true" }}
{{- end }}
{{- if and .Values.metrics.enabled .Values.livenessProbe.port (eq (int64 .Values.metrics.port) (int64 .Values.livenessProbe.port)) }}
{{- fail "metrics.port and livenessProbe.port must differ: the metrics server and kopf's /healthz endpoint each need their own port" }}
{{- end }}
{{- if eq (include "podline.archiveServed" .) "true" }}
{{- $serve := int64 .Values.archive.serve.port }}
{{- if or (and .Values.metrics.enabled (eq $serve (int64 .Values.metrics.port))) (eq $serve (int64 .Values.livenessProbe.port)) }}
{{- fail "archive.serve.port must differ from metrics.port and livenessProbe.port: each server needs its own port" }}
{{- end }}
{{- end }}
{{- range .Values.extraEnv }}
{{- if or (hasPrefix "PODLINE_" .name) (eq .name "POD_ID") }}
{{- fail (printf "extraEnv sets %s, which the chart sets from its values: use the matching value in values.yaml instead" .name) }}
{{- end }}
{{- end }}
{{- end }}

{{/* The dashboard (dashboard.enabled): its own name and labels, so the operator's selectors never match it. */}}
{{- define "podline.dashboard.fullname" -}}
{{- printf "%s-dashboard" (include "podline.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "podline.dashboard.selectorLabels" -}}
app.kubernetes.io/name: {{ printf "%s-dashboard" (include "podline.name" .) | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: dashboard
{{- end }}

{{- define "podline.dashboard.labels" -}}
helm.sh/chart: {{ include "podline.chart" . }}
{{ include "podline.dashboard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: podline
{{- end }}

{{- define "podline.dashboard.rules" -}}
- apiGroups: ["podline.dev"]
  resources: ["pipelines"]
  verbs: {{ if .Values.dashboard.allowActions }}["get", "list", "watch", "patch"]{{ else }}["get", "list", "watch"]{{ end }}
- apiGroups: [""]
  resources: ["pods/log"]
  verbs: ["get"]
{{- end }}

{{/*
The archive's directory when it is a file:// URL (mounted as the archive volume), else "".
*/}}
{{- define "podline.archiveDir" -}}
{{- if and .Values.archive.enabled (hasPrefix "file:///" .Values.archive.url) -}}
{{- trimPrefix "file://" .Values.archive.url -}}
{{- end -}}
{{- end }}
