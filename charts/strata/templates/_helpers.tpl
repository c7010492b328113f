{{/* Names, labels, peer lists and the generated config files shared by the templates. */}}

{{- define "strata.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "strata.controller.name" -}}
{{- printf "%s-controller" (include "strata.fullname" .) -}}
{{- end -}}

{{- define "strata.controller.headless" -}}
{{- printf "%s-controller-hl" (include "strata.fullname" .) -}}
{{- end -}}

{{- define "strata.segmentstore.name" -}}
{{- printf "%s-segmentstore" (include "strata.fullname" .) -}}
{{- end -}}

{{- define "strata.segmentstore.headless" -}}
{{- printf "%s-segmentstore-hl" (include "strata.fullname" .) -}}
{{- end -}}

{{- define "strata.config.name" -}}
{{- printf "%s-config" (include "strata.fullname" .) -}}
{{- end -}}

{{- define "strata.s3.secret" -}}
{{- default (printf "%s-s3" (include "strata.fullname" .)) .Values.tier2.s3.existingSecret -}}
{{- end -}}

{{- define "strata.tier2.claim" -}}
{{- default (printf "%s-tier2" (include "strata.fullname" .)) .Values.tier2.local.existingClaim -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "strata.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component; call with (dict "ctx" $ "component" "controller"). */}}
{{- define "strata.selectorLabels" -}}
app.kubernetes.io/name: {{ .ctx.Chart.Name }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "strata.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) -}}
{{- end -}}

{{/* DNS name of pod <i> of a StatefulSet; call with (dict "ctx" $ "set" NAME "headless" SVC "i" I). */}}
{{- define "strata.podHost" -}}
{{- printf "%s-%d.%s.%s.svc.%s" .set (int .i) .headless .ctx.Release.Namespace .ctx.Values.clusterDomain -}}
{{- end -}}

{{/* raft.members of the controllers: "ID=RAFT_ADDR,CLIENT_URL,HTTP_URL;..." with node id = ordinal + 1. */}}
{{- define "strata.controller.raftMembers" -}}
{{- $n := int .Values.controller.replicas -}}
{{- if or (lt $n 1) (eq (mod $n 2) 0) -}}
{{- fail (printf "controller.replicas %d: use an odd number (1, 3 or 5): a Raft group of %d needs %d up and tolerates no more failures than one of %d" $n $n (add1 (div $n 2)) (sub $n 1)) -}}
{{- end -}}
{{- $ctx := . -}}
{{- $set := include "strata.controller.name" . -}}
{{- $hl := include "strata.controller.headless" . -}}
{{- $p := .Values.controller.ports -}}
{{- $out := list -}}
{{- range $i := until (int .Values.controller.replicas) -}}
{{- $host := include "strata.podHost" (dict "ctx" $ctx "set" $set "headless" $hl "i" $i) -}}
{{- $out = append $out (printf "%d=%s:%d,tcp://%s:%d,http://%s:%d" (add1 $i) $host (int $p.raft) $host (int $p.client) $host (int $p.http)) -}}
{{- end -}}
{{- join ";" $out -}}
{{- end -}}

{{/* Controller client URLs for segment stores: "tcp://host:port,...". */}}
{{- define "strata.controller.urls" -}}
{{- $ctx := . -}}
{{- $set := include "strata.controller.name" . -}}
{{- $hl := include "strata.controller.headless" . -}}
{{- $out := list -}}
{{- range $i := until (int .Values.controller.replicas) -}}
{{- $host := include "strata.podHost" (dict "ctx" $ctx "set" $set "headless" $hl "i" $i) -}}
{{- $out = append $out (printf "tcp://%s:%d" $host (int $ctx.Values.controller.ports.client)) -}}
{{- end -}}
{{- join "," $out -}}
{{- end -}}

{{/*
controller.yaml. The per-pod key node.id comes from the environment the
StatefulSet sets: STRATA_NODE_ID (ordinal + 1); raft.members names every
replica by its stable DNS name.
*/}}
{{- define "strata.controller.config" -}}
{{- $p := .Values.controller.ports -}}
{{- $c := dict
  "data_dir" "/var/lib/strata/controller"
  "listen" (printf "tcp://0.0.0.0:%d" (int $p.client))
  "http" (dict "listen" (printf "http://0.0.0.0:%d" (int $p.http)))
  "raft" (dict "listen" (printf "0.0.0.0:%d" (int $p.raft)) "members" (include "strata.controller.raftMembers" .))
  "containers" (dict "count" (int .Values.segmentStore.containers.count))
  "log" (dict "level" .Values.logLevel)
-}}
{{- $c = mergeOverwrite $c (deepCopy .Values.controller.config) -}}
{{- toYaml $c -}}
{{- end -}}

{{/* tier2 section of segmentstore.yaml (secrets come from the environment). */}}
{{- define "strata.tier2.config" -}}
{{- $t := .Values.tier2 -}}
{{- $opts := dict -}}
{{- if eq $t.type "local" -}}
{{- $opts = dict "root" $t.local.mountPath "fsync" (ternary "true" "false" $t.local.fsync) -}}
{{- else if eq $t.type "s3" -}}
{{- $opts = dict "endpoint" (required "tier2.s3.endpoint is required when tier2.type is s3 (e.g. https://s3.eu-west-1.amazonaws.com)" $t.s3.endpoint) "bucket" (required "tier2.s3.bucket is required when tier2.type is s3" $t.s3.bucket) "region" $t.s3.region -}}
{{- else if eq $t.type "hdfs" -}}
{{- $opts = dict "namenode" (required "tier2.hdfs.url is required when tier2.type is hdfs (WebHDFS base URL, e.g. http://namenode.hdfs:9870)" $t.hdfs.url) "user" $t.hdfs.user "base_path" $t.hdfs.root -}}
{{- else -}}
{{- fail (printf "tier2.type %q is not supported; use local, s3 or hdfs" $t.type) -}}
{{- end -}}
{{- $opts = mergeOverwrite $opts (deepCopy $t.options) -}}
{{- toYaml (dict "plugin" $t.type "options" $opts) -}}
{{- end -}}

{{/* segmentstore.yaml; node.id and the advertised addresses come from the environment. */}}
{{- define "strata.segmentstore.config" -}}
{{- $p := .Values.segmentStore.ports -}}
{{- $c := dict
  "data_dir" "/var/lib/strata/segmentstore"
  "listen" (printf "tcp://0.0.0.0:%d" (int $p.client))
  "http" (dict "listen" (printf "http://0.0.0.0:%d" (int $p.http)))
  "raft" (dict "listen" (printf "0.0.0.0:%d" (int $p.raft)))
  "controller" (include "strata.controller.urls" .)
  "containers" (dict "count" (int .Values.segmentStore.containers.count))
  "limits" (dict "unflushed_budget" .Values.segmentStore.budgets.unflushed "cache_budget" .Values.segmentStore.budgets.cache)
  "tier2" (include "strata.tier2.config" . | fromYaml)
  "log" (dict "level" .Values.logLevel)
-}}
{{- $c = mergeOverwrite $c (deepCopy .Values.segmentStore.config) -}}
{{- toYaml $c -}}
{{- end -}}

{{/* Pod anti-affinity; call with (dict "ctx" $ "component" C "mode" soft|hard|none). */}}
{{- define "strata.antiAffinity" -}}
{{- if eq .mode "hard" -}}
podAntiAffinity:
  requiredDuringSchedulingIgnoredDuringExecution:
    - topologyKey: kubernetes.io/hostname
      labelSelector:
        matchLabels:
          {{- include "strata.selectorLabels" (dict "ctx" .ctx "component" .component) | nindent 10 }}
{{- else if eq .mode "soft" -}}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "strata.selectorLabels" (dict "ctx" .ctx "component" .component) | nindent 12 }}
{{- else if ne .mode "none" -}}
{{- fail (printf "antiAffinity %q is not supported; use soft, hard or none" .mode) -}}
{{- end -}}
{{- end -}}

{{/* HTTP probes on the named port "http". */}}
{{- define "strata.probes" -}}
startupProbe:
  httpGet:
    path: /health/live
    port: http
  periodSeconds: {{ .Values.probes.startup.periodSeconds }}
  failureThreshold: {{ .Values.probes.startup.failureThreshold }}
livenessProbe:
  httpGet:
    path: /health/live
    port: http
  periodSeconds: {{ .Values.probes.liveness.periodSeconds }}
  timeoutSeconds: {{ .Values.probes.liveness.timeoutSeconds }}
  failureThreshold: {{ .Values.probes.liveness.failureThreshold }}
readinessProbe:
  httpGet:
    path: /health/ready
    port: http
  periodSeconds: {{ .Values.probes.readiness.periodSeconds }}
  timeoutSeconds: {{ .Values.probes.readiness.timeoutSeconds }}
  failureThreshold: {{ .Values.probes.readiness.failureThreshold }}
{{- end -}}
