{{/* Names and labels shared by every template. */}}

{{- define "secureml-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "secureml-operator.fullname" -}}
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

{{- define "secureml-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "secureml-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "secureml-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "secureml-operator.labels" -}}
helm.sh/chart: {{ include "secureml-operator.chart" . }}
{{ include "secureml-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "secureml-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "secureml-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "secureml-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The peering object's name: the operator passes it to kopf (secureml_operator/__main__.py). */}}
{{- define "secureml-operator.peeringName" -}}
secureml-operator
{{- end }}

{{/*
Rules for the objects the operator works with in a watched namespace. A ClusterRole carries them
when every namespace is watched, a Role in each namespace otherwise.
*/}}
{{- define "secureml-operator.namespacedRules" -}}
# kopf: watch the custom resources; patch finalizers, progress annotations and status. A drift sweep
# gets the resource it checks (the sweeps are the operator's own, not kopf's), and a walk whose body
# lags the ledger it last stored gets it again.
- apiGroups: ["secureml.io"]
  resources: ["securemlworkspaces"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["secureml.io"]
  resources: ["securemlworkspaces/status"]
  verbs: ["patch"]
# kopf.info / kopf.warn: one event per write to Azure, and per failure.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- if .Values.rbac.credentialSecrets }}
# spec.azure.credentialRef: the service principal Secret, read by name and then watched by name
# (a fieldSelector on metadata.name), so a sweep reads no Secret; never listed.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "watch"]
{{- end }}
{{- end }}

{{/* kopf's resource observer: notices CRDs installed or changed while the operator runs. */}}
{{- define "secureml-operator.crdRules" -}}
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["list", "watch"]
{{- end }}
