{{/*
Go template built-ins only (no sprig functions): the chart renders the same
under helm and under test/deploy-helm.test.ts's renderer (Go's text/template
compiled to WebAssembly). Strings are quoted with printf "%q", as sprig's
quote does.
*/}}
{{- define "airlock.secretName" -}}
{{- if .Values.secrets.existingSecret -}}
{{ .Values.secrets.existingSecret }}
{{- else -}}
{{ .Release.Name }}-airlock
{{- end -}}
{{- end -}}
