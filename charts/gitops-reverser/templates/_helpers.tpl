{{/* Names, labels and the one Valkey connection contract shared by the bundled and an external Valkey. */}}

{{- define "gitops-reverser.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "gitops-reverser.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The bundled Valkey's name: fullname with a "-valkey" suffix that survives truncation, at most 52
characters (StatefulSet pods get a controller-revision-hash label of name + 11 characters, at most 63).
*/}}
{{- define "gitops-reverser.valkeyName" -}}
{{- printf "%s-valkey" (include "gitops-reverser.fullname" . | trunc 45 | trimSuffix "-") -}}
{{- end -}}

{{- define "gitops-reverser.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "gitops-reverser.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gitops-reverser.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: service
{{- end -}}

{{- define "gitops-reverser.valkeySelectorLabels" -}}
app.kubernetes.io/name: {{ include "gitops-reverser.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: valkey
{{- end -}}

{{- define "gitops-reverser.commonLabels" -}}
helm.sh/chart: {{ include "gitops-reverser.chart" . }}
app.kubernetes.io/part-of: gitops-reverser
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Chart.AppVersion }}
app.kubernetes.io/version: {{ . | quote }}
{{- end }}
{{- end -}}

{{- define "gitops-reverser.labels" -}}
{{ include "gitops-reverser.commonLabels" . }}
{{ include "gitops-reverser.selectorLabels" . }}
{{- end -}}

{{- define "gitops-reverser.valkeyLabels" -}}
{{ include "gitops-reverser.commonLabels" . }}
{{ include "gitops-reverser.valkeySelectorLabels" . }}
{{- end -}}

{{- define "gitops-reverser.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "gitops-reverser.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "gitops-reverser.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* The dashboard credentials Secret: the user's or the chart's. */}}
{{- define "gitops-reverser.dashboardSecretName" -}}
{{- default (printf "%s-dashboard" (include "gitops-reverser.fullname" . | trunc 53 | trimSuffix "-")) .Values.dashboard.auth.existingSecret -}}
{{- end -}}

{{/*
A password kept across upgrades: the value given, else the one already in the cluster's Secret (lookup),
else a new random one. `helm template` has no cluster, so it generates a new one each render: GitOps
installs should set the password or an existing Secret instead.
A generated password is remembered for the rest of the render (in .Values.__keptPasswords), so the
Secret and the checksum annotations that include its template see the same one: otherwise every
install would roll its pods on the first upgrade.
*/}}
{{- define "gitops-reverser.keptPassword" -}}
{{- $given := index . 0 -}}
{{- $ctx := index . 1 -}}
{{- $secretName := index . 2 -}}
{{- $key := index . 3 -}}
{{- if $given -}}
{{- $given -}}
{{- else -}}
{{- if not (hasKey $ctx.Values "__keptPasswords") -}}
{{- $_ := set $ctx.Values "__keptPasswords" dict -}}
{{- end -}}
{{- $memo := get $ctx.Values "__keptPasswords" -}}
{{- $memoKey := printf "%s/%s" $secretName $key -}}
{{- if not (hasKey $memo $memoKey) -}}
{{- $existing := lookup "v1" "Secret" $ctx.Release.Namespace $secretName -}}
{{- if and $existing (hasKey ($existing.data | default dict) $key) -}}
{{- $_ := set $memo $memoKey (index $existing.data $key | b64dec) -}}
{{- else -}}
{{- $_ := set $memo $memoKey (randAlphaNum 32) -}}
{{- end -}}
{{- end -}}
{{- get $memo $memoKey -}}
{{- end -}}
{{- end -}}

{{/* ---- Valkey: one connection contract (VALKEY_URL, VALKEY_USERNAME, VALKEY_PASSWORD, VALKEY_TLS_CA_FILE). ---- */}}

{{- define "gitops-reverser.valkeyTls" -}}
{{- if .Values.valkey.enabled -}}{{ .Values.valkey.tls.enabled }}{{- else -}}{{ .Values.valkey.external.tls.enabled }}{{- end -}}
{{- end -}}

{{- define "gitops-reverser.valkeyUrl" -}}
{{- $scheme := ternary "rediss" "redis" (eq (include "gitops-reverser.valkeyTls" .) "true") -}}
{{- if .Values.valkey.enabled -}}
{{- printf "%s://%s.%s.svc:6379" $scheme (include "gitops-reverser.valkeyName" .) .Release.Namespace -}}
{{- else -}}
{{- $address := required "valkey.external.address is required when valkey.enabled is false (host:port of your Valkey)" .Values.valkey.external.address -}}
{{- printf "%s://%s" $scheme $address -}}
{{- end -}}
{{- end -}}

{{/* The Secret and key holding the Valkey password; empty when there is none. */}}
{{- define "gitops-reverser.valkeyPasswordSecret" -}}
{{- if .Values.valkey.enabled -}}
{{- if eq .Values.valkey.auth.mode "existingSecret" -}}
{{- required "valkey.auth.existingSecret is required when valkey.auth.mode is existingSecret" .Values.valkey.auth.existingSecret -}}
{{- else if eq .Values.valkey.auth.mode "password" -}}
{{- include "gitops-reverser.valkeyName" . -}}
{{- end -}}
{{- else -}}
{{- .Values.valkey.external.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "gitops-reverser.valkeyPasswordKey" -}}
{{- if .Values.valkey.enabled -}}
{{- ternary .Values.valkey.auth.existingSecretPasswordKey "password" (eq .Values.valkey.auth.mode "existingSecret") -}}
{{- else -}}
{{- .Values.valkey.external.existingSecretPasswordKey -}}
{{- end -}}
{{- end -}}

{{/* The Secret and key holding the CA of Valkey's server certificate; empty = the system's trust store. */}}
{{- define "gitops-reverser.valkeyCaSecret" -}}
{{- if .Values.valkey.enabled -}}
{{- if .Values.valkey.tls.enabled -}}
{{- required "valkey.tls.secretName is required when valkey.tls.enabled is true (a kubernetes.io/tls Secret with ca.crt)" .Values.valkey.tls.secretName -}}
{{- end -}}
{{- else if .Values.valkey.external.tls.enabled -}}
{{- .Values.valkey.external.tls.caSecret.name -}}
{{- end -}}
{{- end -}}

{{- define "gitops-reverser.valkeyCaKey" -}}
{{- ternary "ca.crt" .Values.valkey.external.tls.caSecret.key .Values.valkey.enabled -}}
{{- end -}}
