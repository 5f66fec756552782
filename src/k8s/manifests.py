"""The manifests `surge k8s` prints: a run spread over the pods of an Indexed Job.

    ConfigMap  NAME          the plan and its data files, mounted at MOUNT_DIR (the pods' working directory)
    Service    NAME          headless: each pod gets NAME-I.NAME (pod 0's is the barrier's address)
    Job        NAME          completionMode Indexed, completions = parallelism = N, no retries; pod I runs
                             surge run ... --segment $(JOB_COMPLETION_INDEX)/N --barrier $(SURGE_BARRIER) --emit-result

Choices (the issue is silent on them):
- No retries means `backoffLimitPerIndex: 0` (Kubernetes 1.29+), not `backoffLimit: 0`:
  with the latter, the first pod to fail (a dead worker, a target outage: exit 1)
  fails the Job, and the Job controller then kills the pods still running, losing
  their results, which `collect --allow-partial` could still merge.  Per index, each
  pod ends on its own.  A part never exits 3 (`surge run --segment` leaves the
  verdict to the merge), so the Job's status says whether the pods ran, and
  `surge k8s collect`'s exit code whether the whole met its objectives.
- Requests equal limits (CPU and memory): the Guaranteed QoS class, so the
  generator is neither throttled below what it asked for nor the first evicted;
  `-w` defaults to the CPU count asked (os.cpu_count() in a pod is the node's).
- The Service publishes not-ready addresses: the barrier is needed before any pod
  would be Ready, and a follower retries until pod 0's name resolves.
- Metrics on the pod's addresses (`--prometheus $(SURGE_PROMETHEUS)`, `0.0.0.0:9464`:
  the pod IP among its addresses; prometheus.io annotations), each
  series labelled with its segment.  An environment variable, so a test running the
  pods' command on one machine gives each its own port.

Pure functions of their arguments: dicts, turned into YAML by `dump_manifests`.
"""
from __future__ import annotations

import base64
import os
import re
from dataclasses import dataclass, field

import yaml

MOUNT_DIR = "/etc/surge"
BARRIER_PORT = 7000
METRICS_PORT = 9464
# A ConfigMap holds at most 1 MiB (etcd's object limit), its keys and metadata included.
CONFIGMAP_MAX_BYTES = 1_000_000
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
NAME_MAX = 52           # room for "-<index>-<5 random>" in pod names within 63 characters


@dataclass(frozen=True)
class DataFile:
    """A file the pods need: where it sits under MOUNT_DIR, and its bytes."""
    path: str               # relative, with '/' separators
    content: bytes


@dataclass(frozen=True)
class JobSpec:
    name: str
    namespace: str
    image: str
    parallelism: int
    run_args: tuple[str, ...]           # after `surge run`, already escaped for $(...) expansion
    files: tuple[DataFile, ...] = ()
    cpu: str = "2"
    memory: str = "1Gi"
    secret: str | None = None           # envFrom: a Secret the plan's ${env.NAME} read
    labels: dict = field(default_factory=dict)


def name_problem(name: str) -> str | None:
    """Why `name` cannot name the Job, its Service and pods (RFC 1123 label), or None."""
    if not _NAME.match(name):
        return f"got {name!r}, expected lower-case letters, digits and '-', starting and ending with a letter or digit"
    if len(name) > NAME_MAX:
        return f"got {len(name)} characters, at most {NAME_MAX} (pod host names NAME-INDEX stay within 63)"
    return None


def escape_for_kubernetes(arg: str) -> str:
    """An argument as Kubernetes passes it through: it expands $(VAR) in a
    container's args, and $$ stands for a literal $.  Every $ doubled, so a
    user's literal "$$" or "$$(X)" also arrives as typed (only "$(" escaped
    would turn "$$" into "$")."""
    return arg.replace("$", "$$")


def expand_like_kubernetes(arg: str, env: dict[str, str]) -> str:
    """What the kubelet makes of an arg: $(VAR) from the container's environment
    (left as written when VAR is not defined), $$ -> $.  For tests and docs; the
    rule is Kubernetes' (its docs: "Define a command and arguments for a container")."""
    out, i = [], 0
    while i < len(arg):
        if arg.startswith("$$", i):
            out.append("$")
            i += 2
        elif arg.startswith("$(", i) and (end := arg.find(")", i)) > 0:
            var = arg[i + 2:end]
            out.append(env.get(var, arg[i:end + 1]))
            i = end + 1
        else:
            out.append(arg[i])
            i += 1
    return "".join(out)


def _labels(spec: JobSpec) -> dict:
    return {"app.kubernetes.io/name": "surge", "app.kubernetes.io/instance": spec.name,
            "app.kubernetes.io/component": "load-generator", **spec.labels}


def _key(index: int, path: str) -> str:
    """A ConfigMap key for a file (keys are [-._a-zA-Z0-9]+, so no '/')."""
    return f"f{index}-" + re.sub(r"[^-._a-zA-Z0-9]", "_", os.path.basename(path))[:200]


def configmap(spec: JobSpec) -> dict:
    data, binary = {}, {}
    for i, f in enumerate(spec.files):
        try:
            data[_key(i, f.path)] = f.content.decode("utf-8")
        except UnicodeDecodeError:
            binary[_key(i, f.path)] = base64.b64encode(f.content).decode("ascii")
    out = {"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": spec.name, "namespace": spec.namespace, "labels": _labels(spec)},
           "data": data}
    if binary:
        out["binaryData"] = binary
    return out


def service(spec: JobSpec) -> dict:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": spec.name, "namespace": spec.namespace, "labels": _labels(spec)},
            "spec": {"clusterIP": "None", "publishNotReadyAddresses": True,
                     "selector": {"app.kubernetes.io/instance": spec.name, "app.kubernetes.io/name": "surge"},
                     "ports": [{"name": "barrier", "port": BARRIER_PORT, "targetPort": BARRIER_PORT,
                                "protocol": "TCP"},
                               {"name": "metrics", "port": METRICS_PORT, "targetPort": METRICS_PORT,
                                "protocol": "TCP"}]}}


def barrier_address(spec: JobSpec) -> str:
    """Pod 0's stable name: hostname NAME-0 in the subdomain of the headless Service NAME."""
    return f"{spec.name}-0.{spec.name}.{spec.namespace}.svc:{BARRIER_PORT}"


def container_args(spec: JobSpec) -> list[str]:
    return ["run", *spec.run_args,
            "--segment", f"$(JOB_COMPLETION_INDEX)/{spec.parallelism}",
            "--barrier", "$(SURGE_BARRIER)",
            "--emit-result", "--prometheus", "$(SURGE_PROMETHEUS)", "-q"]


def job(spec: JobSpec) -> dict:
    labels = _labels(spec)
    resources = {"cpu": spec.cpu, "memory": spec.memory}
    env = [
        # The Job controller sets it too; declared so that $(JOB_COMPLETION_INDEX) expands on every version.
        {"name": "JOB_COMPLETION_INDEX",
         "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}},
        {"name": "SURGE_BARRIER", "value": barrier_address(spec)},
        # every IPv4 address of the pod, its pod IP among them ([::] fails where pods have no IPv6)
        {"name": "SURGE_PROMETHEUS", "value": f"0.0.0.0:{METRICS_PORT}"},
        {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
    ]
    container = {
        "name": "surge",
        "image": spec.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["surge"],
        "args": container_args(spec),
        "workingDir": MOUNT_DIR,
        "env": env,
        "ports": [{"name": "barrier", "containerPort": BARRIER_PORT, "protocol": "TCP"},
                  {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}],
        "resources": {"requests": dict(resources), "limits": dict(resources)},
        "volumeMounts": [{"name": "plan", "mountPath": MOUNT_DIR, "readOnly": True},
                         {"name": "tmp", "mountPath": "/tmp"}],
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}},
    }
    if spec.secret:
        container["envFrom"] = [{"secretRef": {"name": spec.secret}}]
    items = [{"key": _key(i, f.path), "path": f.path} for i, f in enumerate(spec.files)]
    plan_volume = {"name": spec.name}
    if items:
        plan_volume["items"] = items
    pod = {
        "metadata": {"labels": labels,
                     "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": str(METRICS_PORT),
                                     "prometheus.io/path": "/metrics"}},
        "spec": {
            "subdomain": spec.name,
            "restartPolicy": "Never",
            "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [container],
            "volumes": [{"name": "plan", "configMap": plan_volume},
                        # /tmp holds the supervisor's finished seconds (surge.run.spill):
                        # one to two hours of them, ~45-90 MB at 20,000 requests/s
                        {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}],
        },
    }
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": spec.name, "namespace": spec.namespace, "labels": labels},
            "spec": {"completionMode": "Indexed", "completions": spec.parallelism,
                     "parallelism": spec.parallelism, "backoffLimitPerIndex": 0,
                     "template": pod}}


def manifests(spec: JobSpec) -> list[dict]:
    return [configmap(spec), service(spec), job(spec)]


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data):         # each manifest spelled out, no &id001 anchors
        return True


def _text(dumper, value: str):
    style = "|" if "\n" in value else None      # a plan reads as itself in the ConfigMap
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def dump_manifests(docs: list[dict]) -> str:
    """The documents as one YAML stream for `kubectl apply -f -`."""
    return "".join("---\n" + yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                                       allow_unicode=True, width=1_000_000) for doc in docs)
