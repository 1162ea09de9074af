{{/* Chart name, used as app.kubernetes.io/name of the gateway. */}}
{{- define "alertgate-gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name of the release's objects. */}}
{{- define "alertgate-gateway.fullname" -}}
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

{{- define "alertgate-gateway.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "alertgate-gateway.labels" -}}
helm.sh/chart: {{ include "alertgate-gateway.chart" . }}
{{ include "alertgate-gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: alertgate
{{- end -}}

{{- define "alertgate-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "alertgate-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Bundled Redis: name and labels (app.kubernetes.io/name: redis). */}}
{{- define "alertgate-gateway.redisName" -}}
{{- printf "%s-redis" (include "alertgate-gateway.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "alertgate-gateway.redisSelectorLabels" -}}
app.kubernetes.io/name: redis
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: dedup-store
{{- end -}}

{{- define "alertgate-gateway.redisLabels" -}}
helm.sh/chart: {{ include "alertgate-gateway.chart" . }}
{{ include "alertgate-gateway.redisSelectorLabels" . }}
app.kubernetes.io/version: {{ .Values.redis.bundled.image.tag | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: alertgate
{{- end -}}

{{- define "alertgate-gateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "alertgate-gateway.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Namespace where RemediationRequests are created. */}}
{{- define "alertgate-gateway.targetNamespace" -}}
{{- default .Release.Namespace .Values.kubernetes.namespace -}}
{{- end -}}

{{/* Redis mode: bundled, sentinel or standalone; fails on a conflict. */}}
{{- define "alertgate-gateway.redisMode" -}}
{{- $s := .Values.redis.sentinel -}}
{{- if and .Values.redis.bundled.enabled $s.masterName -}}
{{- fail "redis: set either redis.bundled.enabled or redis.sentinel.masterName, not both" -}}
{{- else if .Values.redis.bundled.enabled -}}
bundled
{{- else if $s.masterName -}}
{{- if not $s.addrs -}}{{- fail "redis.sentinel.addrs: required with redis.sentinel.masterName" -}}{{- end -}}
sentinel
{{- else if $s.addrs -}}
{{- fail "redis.sentinel.masterName: required with redis.sentinel.addrs" -}}
{{- else if .Values.redis.addr -}}
standalone
{{- else -}}
{{- fail "redis: set redis.addr, redis.sentinel.masterName and addrs, or redis.bundled.enabled" -}}
{{- end -}}
{{- end -}}

{{/* Redis address the gateway uses in standalone and bundled mode. */}}
{{- define "alertgate-gateway.redisAddr" -}}
{{- if .Values.redis.bundled.enabled -}}
{{- printf "%s:%v" (include "alertgate-gateway.redisName" .) .Values.redis.bundled.port -}}
{{- else -}}
{{- .Values.redis.addr -}}
{{- end -}}
{{- end -}}

{{/* Secret the chart creates for passwords given as plain values. */}}
{{- define "alertgate-gateway.secretName" -}}
{{- printf "%s-credentials" (include "alertgate-gateway.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Secret and key of the Redis password, or empty. */}}
{{- define "alertgate-gateway.redisPasswordRef" -}}
{{- with .Values.redis.auth -}}
{{- if .existingSecret -}}
{{- printf "%s/%s" .existingSecret .existingSecretPasswordKey -}}
{{- else if .password -}}
{{- printf "%s/%s" (include "alertgate-gateway.secretName" $) "redis-password" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "alertgate-gateway.sentinelPasswordRef" -}}
{{- with .Values.redis.sentinel.auth -}}
{{- if .existingSecret -}}
{{- printf "%s/%s" .existingSecret .existingSecretPasswordKey -}}
{{- else if .password -}}
{{- printf "%s/%s" (include "alertgate-gateway.secretName" $) "sentinel-password" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Secret of the static tokens file. */}}
{{- define "alertgate-gateway.tokensSecretName" -}}
{{- if .Values.auth.static.existingSecret -}}
{{- .Values.auth.static.existingSecret -}}
{{- else -}}
{{- printf "%s-tokens" (include "alertgate-gateway.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Seconds in a Go duration made of whole h/m/s units ("10s", "1m30s"). */}}
{{- define "alertgate-gateway.seconds" -}}
{{- $d := toString . -}}
{{- if or (eq $d "") (not (regexMatch "^([0-9]+h)?([0-9]+m)?([0-9]+s)?$" $d)) -}}
{{- fail (printf "duration %q: use whole h, m and s units here, e.g. 10s or 1m30s" $d) -}}
{{- end -}}
{{- $total := 0 -}}
{{- range (regexFindAll "[0-9]+[hms]" $d -1) -}}
{{- $n := trimSuffix "h" (trimSuffix "m" (trimSuffix "s" .)) | atoi -}}
{{- if hasSuffix "h" . -}}{{- $total = add $total (mul $n 3600) -}}
{{- else if hasSuffix "m" . -}}{{- $total = add $total (mul $n 60) -}}
{{- else -}}{{- $total = add $total $n -}}
{{- end -}}
{{- end -}}
{{- $total -}}
{{- end -}}

{{/* terminationGracePeriodSeconds: above preStop sleep + shutdown timeout. */}}
{{- define "alertgate-gateway.terminationGracePeriodSeconds" -}}
{{- $need := add (include "alertgate-gateway.seconds" .Values.gateway.shutdownTimeout | atoi) (int .Values.preStopSleepSeconds) -}}
{{- if eq (toString .Values.terminationGracePeriodSeconds) "" -}}
{{- add $need 5 -}}
{{- else -}}
{{- $set := int .Values.terminationGracePeriodSeconds -}}
{{- if le $set $need -}}
{{- fail (printf "terminationGracePeriodSeconds %d must exceed preStopSleepSeconds + gateway.shutdownTimeout (%ds)" $set $need) -}}
{{- end -}}
{{- $set -}}
{{- end -}}
{{- end -}}

{{/* Port numbers of a list of host:port addresses. */}}
{{- define "alertgate-gateway.addrPorts" -}}
{{- $ports := list -}}
{{- range . -}}
{{- $parts := splitList ":" (toString .) -}}
{{- if gt (len $parts) 1 -}}
{{- $ports = append $ports (last $parts | atoi) -}}
{{- end -}}
{{- end -}}
{{- toJson $ports -}}
{{- end -}}
