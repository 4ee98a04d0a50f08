"""JSON Schemas (draft 2020-12) of the Kubernetes objects ``--export k8s`` writes, from the Kubernetes API reference.

No pure-Python copy of the Kubernetes OpenAPI schemas is installable here (the ``kubernetes`` client is not a test
dependency), so the fields are written down as data from the API reference pages, each object with every field
the reference lists at the levels the exports use, ``additionalProperties: false`` so that a misspelt or invented
field fails, and the required fields and types the reference gives:

- apps/v1 Deployment: https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/deployment-v1/
- batch/v1 Job: https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/job-v1/
- v1 Service: https://kubernetes.io/docs/reference/kubernetes-api/service-resources/service-v1/
- PodSpec, Container, Probe, Volume: https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/
- names: DNS-1123 labels and subdomains, https://kubernetes.io/docs/concepts/overview/working-with-objects/names/
"""

from __future__ import annotations

DNS_LABEL = {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"}
DNS_SUBDOMAIN = {"type": "string", "maxLength": 253, "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"}
INT_OR_STRING = {"type": ["integer", "string"]}
QUANTITY = {"type": ["integer", "string"], "pattern": r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$"}
LABELS = {"type": "object", "additionalProperties": {"type": "string", "maxLength": 63}}


def closed(properties: dict, required: tuple[str, ...] = ()) -> dict:
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


def _any(*names: str) -> dict:
    return {n: {} for n in names}


OBJECT_META = closed({"name": DNS_SUBDOMAIN, "namespace": DNS_LABEL, "labels": LABELS, "annotations": LABELS,
                      **_any("generateName", "finalizers", "ownerReferences")})
HTTP_GET = closed({"path": {"type": "string"}, "port": INT_OR_STRING, "host": {"type": "string"},
                   "scheme": {"enum": ["HTTP", "HTTPS"]}, "httpHeaders": {"type": "array"}}, ("port",))
PROBE = closed({"httpGet": HTTP_GET, "periodSeconds": {"type": "integer", "minimum": 1},
                "failureThreshold": {"type": "integer", "minimum": 1},
                "initialDelaySeconds": {"type": "integer", "minimum": 0},
                "timeoutSeconds": {"type": "integer", "minimum": 1},
                "successThreshold": {"type": "integer", "minimum": 1},
                **_any("exec", "grpc", "tcpSocket", "terminationGracePeriodSeconds")})
CONTAINER_PORT = closed({"containerPort": {"type": "integer", "minimum": 1, "maximum": 65535},
                         "name": {"type": "string", "maxLength": 15}, "protocol": {"enum": ["TCP", "UDP", "SCTP"]},
                         **_any("hostIP", "hostPort")}, ("containerPort",))
RESOURCES = closed({"limits": {"type": "object", "additionalProperties": QUANTITY},
                    "requests": {"type": "object", "additionalProperties": QUANTITY}, **_any("claims")})
VOLUME_MOUNT = closed({"name": {"type": "string"}, "mountPath": {"type": "string"},
                       **_any("readOnly", "subPath", "subPathExpr", "mountPropagation", "recursiveReadOnly")},
                      ("name", "mountPath"))
STRINGS = {"type": "array", "items": {"type": "string"}}
CONTAINER = closed({
    "name": DNS_LABEL, "image": {"type": "string", "minLength": 1}, "command": STRINGS, "args": STRINGS,
    "ports": {"type": "array", "items": CONTAINER_PORT}, "resources": RESOURCES,
    "startupProbe": PROBE, "readinessProbe": PROBE, "livenessProbe": PROBE,
    "volumeMounts": {"type": "array", "items": VOLUME_MOUNT},
    **_any("env", "envFrom", "workingDir", "imagePullPolicy", "lifecycle", "securityContext", "stdin", "tty",
           "terminationMessagePath", "terminationMessagePolicy", "volumeDevices", "resizePolicy", "restartPolicy"),
}, ("name",))
EMPTY_DIR = closed({"medium": {"enum": ["", "Memory"]}, "sizeLimit": QUANTITY})
VOLUME = closed({"name": DNS_LABEL, "emptyDir": EMPTY_DIR,
                 **_any("persistentVolumeClaim", "hostPath", "secret", "configMap", "ephemeral", "nfs", "csi",
                        "projected", "downwardAPI")}, ("name",))
POD_SPEC = closed({
    "containers": {"type": "array", "items": CONTAINER, "minItems": 1},
    "volumes": {"type": "array", "items": VOLUME},
    "restartPolicy": {"enum": ["Always", "OnFailure", "Never"]},
    "subdomain": DNS_LABEL, "hostname": DNS_LABEL,
    **_any("initContainers", "nodeSelector", "affinity", "tolerations", "serviceAccountName", "imagePullSecrets",
           "terminationGracePeriodSeconds", "securityContext", "priorityClassName", "runtimeClassName",
           "schedulerName", "topologySpreadConstraints", "hostIPC", "hostNetwork", "dnsPolicy", "shareProcessNamespace",
           "enableServiceLinks", "setHostnameAsFQDN", "activeDeadlineSeconds"),
}, ("containers",))
POD_TEMPLATE = closed({"metadata": OBJECT_META, "spec": POD_SPEC})
SELECTOR = closed({"matchLabels": LABELS, "matchExpressions": {"type": "array"}})

DEPLOYMENT = closed({
    "apiVersion": {"const": "apps/v1"}, "kind": {"const": "Deployment"}, "metadata": OBJECT_META,
    "spec": closed({"replicas": {"type": "integer", "minimum": 0}, "selector": SELECTOR, "template": POD_TEMPLATE,
                    **_any("strategy", "minReadySeconds", "revisionHistoryLimit", "progressDeadlineSeconds",
                           "paused")}, ("selector", "template")),
}, ("apiVersion", "kind", "metadata", "spec"))

JOB = closed({
    "apiVersion": {"const": "batch/v1"}, "kind": {"const": "Job"}, "metadata": OBJECT_META,
    "spec": closed({"template": POD_TEMPLATE, "completions": {"type": "integer", "minimum": 1},
                    "parallelism": {"type": "integer", "minimum": 0},
                    "completionMode": {"enum": ["NonIndexed", "Indexed"]},
                    "backoffLimit": {"type": "integer", "minimum": 0},
                    **_any("activeDeadlineSeconds", "ttlSecondsAfterFinished", "suspend", "selector",
                           "manualSelector", "podFailurePolicy", "backoffLimitPerIndex", "maxFailedIndexes",
                           "podReplacementPolicy", "successPolicy")}, ("template",)),
}, ("apiVersion", "kind", "metadata", "spec"))

SERVICE_PORT = closed({"port": {"type": "integer", "minimum": 1, "maximum": 65535},
                       "targetPort": INT_OR_STRING, "name": DNS_LABEL,
                       "protocol": {"enum": ["TCP", "UDP", "SCTP"]}, **_any("nodePort", "appProtocol")}, ("port",))
SERVICE = closed({
    "apiVersion": {"const": "v1"}, "kind": {"const": "Service"}, "metadata": OBJECT_META,
    "spec": closed({"selector": LABELS, "ports": {"type": "array", "items": SERVICE_PORT},
                    "type": {"enum": ["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"]},
                    "clusterIP": {"type": "string"},
                    **_any("clusterIPs", "externalIPs", "sessionAffinity", "loadBalancerIP", "externalName",
                           "externalTrafficPolicy", "internalTrafficPolicy", "publishNotReadyAddresses",
                           "ipFamilies", "ipFamilyPolicy")}),
}, ("apiVersion", "kind", "metadata"))

BY_KIND = {"Deployment": DEPLOYMENT, "Job": JOB, "Service": SERVICE}
