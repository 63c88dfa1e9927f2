{{/* Chart name, at most 63 characters. */}}
{{- define "cyrusrepl.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-qualified name; the release name alone when it already contains the chart name. */}}
{{- define "cyrusrepl.fullname" -}}
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

{{- define "cyrusrepl.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cyrusrepl.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: manager
{{- end }}

{{- define "cyrusrepl.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "cyrusrepl.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: cyrusrepl
{{- end }}

{{- define "cyrusrepl.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (printf "%s-manager" (include "cyrusrepl.fullname" .)) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "cyrusrepl.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{- define "cyrusrepl.replicatorImage" -}}
{{- printf "%s:%s" .Values.replicatorImage.repository (.Values.replicatorImage.tag | default .Chart.AppVersion) }}
{{- end }}

{{- define "cyrusrepl.agentImage" -}}
{{- printf "%s:%s" .Values.agentImage.repository (.Values.agentImage.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* Listeners bind loopback only when sharing the node's network. */}}
{{- define "cyrusrepl.bindHost" -}}
{{- if .Values.hostNetwork }}127.0.0.1{{ end }}
{{- end }}

{{/* The replicator pod defaults file (--replicator-defaults): a pair's spec.replicator
shape. A null id is left out, which leaves it to the platform. */}}
{{- define "cyrusrepl.replicatorDefaults" -}}
{{- $r := .Values.replicator -}}
imagePullPolicy: {{ $r.imagePullPolicy }}
{{- with $r.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $r.podLabels }}
podLabels:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $r.podAnnotations }}
podAnnotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $r.priorityClassName }}
priorityClassName: {{ . | quote }}
{{- end }}
{{- with $r.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $r.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $r.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $r.resources }}
resources:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- range $k := list "runAsUser" "runAsGroup" "fsGroup" }}
{{- with index $r $k }}
{{ $k }}: {{ int64 . }}
{{- end }}
{{- end }}
{{- end }}
