{{/* Name of every object; the metrics Service is "<fullname>-metrics". */}}
{{- define "flokoa-controller.fullname" -}}
{{- default "flokoa-controller" .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{/* The operator's default Lease name (DEFAULT_LEADER_ELECTION_ID in runtime/options.py). */}}
{{- define "flokoa-controller.leaseName" -}}
{{- default "flokoa-controller.agent.flokoa.ai" .Values.leaderElection.id -}}
{{- end -}}

{{- define "flokoa-controller.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end -}}
{{- end -}}

{{/* Labels of every object; "component" is added per object. */}}
{{- define "flokoa-controller.labels" -}}
app.kubernetes.io/name: flokoa-controller
app.kubernetes.io/part-of: flokoa
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The pods' selector: the same as config/manager's, so a kustomize install can be adopted. */}}
{{- define "flokoa-controller.selectorLabels" -}}
app.kubernetes.io/name: flokoa-controller
app.kubernetes.io/component: controller
{{- end -}}

{{/* The rules of the operator's ClusterRole or Role (config/rbac/role.yaml). */}}
{{- define "flokoa-controller.rules" -}}
{{ .Files.Get "files/rbac-rules.yaml" }}
{{- end -}}

{{/* Leader election: create any Lease (it does not exist yet), read and renew only ours. */}}
{{- define "flokoa-controller.leaseRules" -}}
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["create"]
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  resourceNames: [{{ include "flokoa-controller.leaseName" . | quote }}]
  verbs: ["get", "update"]
{{- end -}}

{{/* The arguments of `flokoa-controller run`: a value left empty keeps the operator's default. */}}
{{- define "flokoa-controller.args" -}}
- run
{{- if .Values.leaderElection.enabled }}
- --leader-elect
{{- end }}
- --metrics-bind-address=:{{ .Values.metrics.port }}
- --health-probe-bind-address=:{{ .Values.health.port }}
{{- if eq .Values.scope "namespace" }}
- --namespace=$(POD_NAMESPACE)
{{- else if .Values.namespaces }}
- {{ printf "--namespace=%s" (join "," .Values.namespaces) | quote }}
{{- end }}
{{- $le := .Values.leaderElection }}
{{- if $le.id }}
- {{ printf "--leader-election-id=%s" $le.id | quote }}
{{- end }}
{{- range $flag, $value := dict "lease-duration" $le.leaseDuration "renew-deadline" $le.renewDeadline "retry-period" $le.retryPeriod }}
{{- if $value }}
- {{ printf "--%s=%s" $flag $value | quote }}
{{- end }}
{{- end }}
{{- $c := .Values.controller }}
{{- $flags := list
  (list "provider-revalidate-interval" $c.providerRevalidateInterval)
  (list "max-concurrent-reconciles" $c.maxConcurrentReconciles)
  (list "probe-concurrency-per-host" $c.probeConcurrencyPerHost)
  (list "probe-connect-timeout" $c.probeConnectTimeout)
  (list "max-probe-timeout" $c.maxProbeTimeout)
  (list "max-concurrent-probes" $c.maxConcurrentProbes)
  (list "max-concurrent-probes-per-namespace" $c.maxConcurrentProbesPerNamespace)
  (list "google-workload-identity-audience" $c.googleWorkloadIdentityAudience)
  (list "google-token-audience" $c.googleTokenAudience)
  (list "google-sts-endpoint" $c.googleStsEndpoint)
  (list "google-iam-credentials-endpoint" $c.googleIamCredentialsEndpoint)
  (list "azure-authority-host" $c.azureAuthorityHost)
  (list "azure-tenant-id" $c.azureTenantId)
  (list "graceful-shutdown-timeout" $c.gracefulShutdownTimeout)
  (list "cache-sync-timeout" $c.cacheSyncTimeout)
  (list "watch-inactivity-timeout" $c.watchInactivityTimeout)
  (list "sync-period" $c.syncPeriod)
  (list "event-loop" $c.eventLoop)
  (list "log-format" $c.logFormat)
  (list "log-level" $c.logLevel) }}
{{- range $flags }}
{{- $value := index . 1 }}
{{- if not (or (kindIs "invalid" $value) (eq (toString $value) "")) }}
- {{ printf "--%s=%v" (index . 0) $value | quote }}
{{- end }}
{{- end }}
{{- range $flag, $values := dict "deny-destinations" $c.denyDestinations "allow-destinations" $c.allowDestinations "ambient-identity-namespaces" $c.ambientIdentityNamespaces "google-token-uris" $c.googleTokenUris "identity-allowed-hosts" $c.identityAllowedHosts }}
{{- if $values }}
- {{ printf "--%s=%s" $flag (join "," $values) | quote }}
{{- end }}
{{- end }}
{{- if eq (toString $c.streamingList) "true" }}
- --streaming-list
{{- else if eq (toString $c.streamingList) "false" }}
- --no-streaming-list
{{- end }}
{{- range .Values.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end -}}
