{{/* The chart's name. */}}
{{- define "agentrun-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: names every namespaced object and the operator's ClusterRole. */}}
{{- define "agentrun-operator.fullname" -}}
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

{{- define "agentrun-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "agentrun-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "agentrun-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "agentrun-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: agentrun-operator
{{- end }}

{{- define "agentrun-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "agentrun-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Lease leader election uses (also its only RBAC resourceName). */}}
{{- define "agentrun-operator.leaseName" -}}
{{- include "agentrun-operator.fullname" . }}
{{- end }}

{{- define "agentrun-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
Exactly what the operator calls (src/adapters/kube/*.ts, src/operator.ts; a unit test keeps this
list and the code in step):
- agentruns: list/watch (informer), get, patch (finalizer), delete (ttlSecondsAfterFinished);
  agentruns/status update (compare-and-swap status write); agentruns/finalizers update (owner
  references with blockOwnerDeletion on journal ConfigMaps and tool pods);
- agenttools, modelendpoints, mcpservers: get/list/watch; mcpservers/status update (discovered tools);
- pods: list/watch (informer), create, delete, deletecollection, patch (releasing the tool-pod finalizer);
  pods/log get (tool output);
- configmaps: get, create (the journal; they are deleted by the garbage collector, never by us);
- events: create;
- secrets: get, only the names in modelApiKeySecrets and mcpServerSecrets.
*/}}
{{- define "agentrun-operator.rules" -}}
- apiGroups: ["agentrun.dev"]
  resources: ["agentruns"]
  verbs: ["get", "list", "watch", "patch", "delete"]
- apiGroups: ["agentrun.dev"]
  resources: ["agentruns/status"]
  verbs: ["update"]
- apiGroups: ["agentrun.dev"]
  resources: ["agentruns/finalizers"]
  verbs: ["update"]
- apiGroups: ["agentrun.dev"]
  resources: ["agenttools", "modelendpoints", "mcpservers"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["agentrun.dev"]
  resources: ["mcpservers/status"]
  verbs: ["update"]
# Managed MCPServers: their Deployment, Service and NetworkPolicy (created, drift reverted; deleted
# by garbage collection through ownerReferences), and the Service's ready addresses.
- apiGroups: ["agentrun.dev"]
  resources: ["mcpservers/finalizers"]
  verbs: ["update"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "update"]
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "create", "update"]
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["get", "create", "update"]
- apiGroups: ["discovery.k8s.io"]
  resources: ["endpointslices"]
  verbs: ["list"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch", "create", "delete", "deletecollection", "patch"]
- apiGroups: [""]
  resources: ["pods/log"]
  verbs: ["get"]
- apiGroups: ["agentrun.dev"]
  resources: ["agentrunjournals"]
  verbs: ["get", "create"]
# A virtual subresource: the admission policy agentrun-journal lets only holders of this verb
# create journal entries or write a run's status (docs/security.md).
- apiGroups: ["agentrun.dev"]
  resources: ["agentruns/journal"]
  verbs: ["write"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- with concat (.Values.modelApiKeySecrets | default list) (.Values.mcpServerSecrets | default list) | uniq }}
- apiGroups: [""]
  resources: ["secrets"]
  resourceNames: {{ toJson . }}
  verbs: ["get"]
{{- end }}
{{- end }}

{{/*
"true" when the generated approval-policy document of kind $gvk ("group/version/Kind") is installed:
always; never; or auto: every document, except that the MutatingAdmissionPolicy kinds (served as
admissionregistration.k8s.io/v1 from Kubernetes 1.36) only where the cluster serves them.
*/}}
{{- define "agentrun-operator.installPolicy" -}}
{{- $root := index . 0 }}{{ $gvk := index . 1 }}
{{- $mode := $root.Values.admissionPolicies.install }}
{{- if eq $mode "always" }}true
{{- else if eq $mode "auto" }}
{{- if hasPrefix "admissionregistration.k8s.io/v1/MutatingAdmissionPolicy" $gvk }}
{{- if or ($root.Capabilities.APIVersions.Has $gvk) (semverCompare ">=1.36.0-0" $root.Capabilities.KubeVersion.Version) }}true{{ end }}
{{- else }}true{{ end }}
{{- end }}
{{- end }}

{{/* Namespaces that get the tool-pod NetworkPolicy. */}}
{{- define "agentrun-operator.networkPolicyNamespaces" -}}
{{- $np := .Values.toolPods.networkPolicy }}
{{- toJson (default .Values.watchNamespaces $np.namespaces) }}
{{- end }}

{{/* Cross-field checks the schema cannot express, with a message that says what to fix. */}}
{{- define "agentrun-operator.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) }}
{{- fail (printf "replicaCount is %d but leaderElection.enabled is false: several replicas would reconcile the same runs at once; set leaderElection.enabled=true or replicaCount=1" (int .Values.replicaCount)) }}
{{- end }}
{{- with .Values.leaderElection }}
{{- $lease := trimSuffix "s" .leaseDuration | int }}{{ $renew := trimSuffix "s" .renewDeadline | int }}{{ $retry := trimSuffix "s" .retryPeriod | int }}
{{- if le $lease $renew }}
{{- fail (printf "leaderElection.leaseDuration (%s) must be longer than leaderElection.renewDeadline (%s), or a standby could take over while the leader still acts" .leaseDuration .renewDeadline) }}
{{- end }}
{{- if le (mulf $retry 1.2) (float64 $renew) }}{{ else }}
{{- fail (printf "leaderElection.renewDeadline (%s) must be longer than 1.2 x leaderElection.retryPeriod (%s)" .renewDeadline .retryPeriod) }}
{{- end }}
{{- end }}
{{- if and .Values.toolPods.networkPolicy.enabled (eq (len (fromJsonArray (include "agentrun-operator.networkPolicyNamespaces" .))) 0) }}
{{- fail "toolPods.networkPolicy.enabled needs namespaces to put the policy in: set toolPods.networkPolicy.namespaces (or watchNamespaces)" }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.service.enabled) }}
{{- fail "metrics.serviceMonitor.enabled needs metrics.service.enabled=true (the ServiceMonitor selects that Service)" }}
{{- end }}
{{- end }}
