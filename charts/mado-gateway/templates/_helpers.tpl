{{/* Names and labels, as `helm create` names them. */}}
{{- define "mado-gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "mado-gateway.fullname" -}}
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

{{- define "mado-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mado-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "mado-gateway.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "mado-gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "mado-gateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "mado-gateway.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "mado-gateway.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{- define "mado-gateway.tlsSecretName" -}}
{{- .Values.tls.existingSecret | default (printf "%s-tls" (include "mado-gateway.fullname" .)) }}
{{- end }}

{{- define "mado-gateway.credentialsSecretName" -}}
{{- .Values.credentials.existingSecret | default (printf "%s-credentials" (include "mado-gateway.fullname" .)) }}
{{- end }}

{{- define "mado-gateway.hasCredentials" -}}
{{- if or .Values.credentials.existingSecret .Values.credentials.files }}true{{ end }}
{{- end }}

{{- define "mado-gateway.mutualTls" -}}
{{- if and .Values.tls.enabled .Values.tls.clientAuth }}true{{ end }}
{{- end }}

{{- define "mado-gateway.scheme" -}}
{{- if .Values.tls.enabled }}HTTPS{{ else }}HTTP{{ end }}
{{- end }}

{{/*
The configuration file: .Values.config with what the chart owns set over it (listen
address and port, TLS file paths, the journal directory on its volume).
*/}}
{{- define "mado-gateway.configFile" -}}
{{- $config := deepCopy (.Values.config | default dict) }}
{{- $server := get $config "server" | default dict }}
{{- $_ := set $server "host" "0.0.0.0" }}
{{- $_ := set $server "port" (int .Values.containerPort) }}
{{- /* The admin listener (metrics, admin views) on its own port, for Prometheus in the
cluster; one worker per pod unless the configuration says otherwise (replicas scale). */}}
{{- $_ := set $server "admin" (dict "host" "0.0.0.0" "port" (int .Values.metrics.port)) }}
{{- if not (hasKey $server "workers") }}
{{- $_ := set $server "workers" 1 }}
{{- end }}
{{- if .Values.tls.enabled }}
{{- $tls := get $server "tls" | default dict }}
{{- $_ := set $tls "cert_file" "/etc/mado-gateway/tls/tls.crt" }}
{{- $_ := set $tls "key_file" "/etc/mado-gateway/tls/tls.key" }}
{{- if .Values.tls.clientAuth }}
{{- $_ := set $tls "client_ca_file" "/etc/mado-gateway/tls/ca.crt" }}
{{- end }}
{{- $_ := set $server "tls" $tls }}
{{- end }}
{{- $_ := set $config "server" $server }}
{{- $audit := get $config "audit" | default dict }}
{{- $journal := get $audit "journal" | default dict }}
{{- $_ := set $journal "directory" "/var/lib/mado-gateway/audit-journal" }}
{{- $_ := set $audit "journal" $journal }}
{{- $_ := set $config "audit" $audit }}
{{- toYaml $config }}
{{- end }}

{{/* checkov skips, each with its reason, for the pod-bearing resources. */}}
{{- define "mado-gateway.checkovSkips" -}}
{{- if not .Values.image.digest -}}
checkov.io/skip1: CKV_K8S_43=The image is named by tag unless image.digest is set; set it to pin the image by digest.
{{ end -}}
checkov.io/skip2: CKV_K8S_15=IfNotPresent is right for immutable release tags and digests; Always would make every restart depend on the registry.
{{- end }}
