{{/*
The operator's RBAC rules: exactly the API calls it makes, nothing more. The same rules are granted
cluster-wide (ClusterRole) or per watched namespace (Role), see rbac.scope.

  pipelines         get, list, watch    kopf lists and watches Pipelines (get: reading one you may list)
  pipelines/status  patch               the reconciler writes status with a merge patch
  pods              get, list, watch    kopf watches podline's pods; the reconciler re-reads a pod it created
  pods              create, patch,      one pod per run; patched to stand the runner image in for a step whose
                    delete              image cannot be pulled, to stop it, and to mark it archived and remove
                                        the archive's finalizer (podline.dev/archive); old runs' pods beyond the
                                        history limit are deleted
  secrets           get                 the image_pull_secrets a Pipeline names (any name, so no resourceNames)
  secrets           create              the generated kubernetes.io/dockerconfigjson pull Secret
  events            create              a few Events per run (run started, step failed, run finished)
  pods/log          get                 only with archive.enabled: the archiver reads each ended step's
                                        (masked) output to archive it (docs/archive.md: why not pods/exec)

Not granted, on purpose: CRDs and namespaces (kopf then scans resources once at start and serves the exact
namespaces it is given; it logs that it cannot watch them), pods/log without the archive, pods/exec, updates
or deletes of Pipelines, Secrets or Events. tests/chart/test_chart.py pins this list.
*/}}
{{- define "podline.operatorRules" -}}
- apiGroups: ["podline.dev"]
  resources: ["pipelines"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["podline.dev"]
  resources: ["pipelines/status"]
  verbs: ["patch"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "create"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- if .Values.archive.enabled }}
- apiGroups: [""]
  resources: ["pods/log"]
  verbs: ["get"]
{{- end }}
{{- end }}
