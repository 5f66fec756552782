"""`surge k8s collect NAME`: each pod's log through `kubectl logs`, its
SURGE-RESULT line read as a part (surge.result.parts), for `surge merge`.

Pods are listed by the label `surge k8s` put on them
(app.kubernetes.io/instance=NAME), one `kubectl logs` per pod, so a pod
without a result is named, and no log is cut at kubectl's default --tail of
a label selector.
"""
from __future__ import annotations

import json
import shutil
import subprocess

from surge.result.combine import CombineError, Part
from surge.result.parts import parts_of_log

KUBECTL_TIMEOUT_S = 120


class CollectError(RuntimeError):
    """kubectl missing or failing (exit 1), one line."""


def _kubectl(args: list[str], kubectl: str) -> str:
    try:
        done = subprocess.run([kubectl, *args], capture_output=True, text=True, timeout=KUBECTL_TIMEOUT_S)
    except FileNotFoundError:
        raise CollectError(f"{kubectl} not found: install kubectl or give --kubectl PATH") from None
    except subprocess.TimeoutExpired:
        raise CollectError(f"kubectl {' '.join(args[:2])} did not answer within {KUBECTL_TIMEOUT_S}s") from None
    if done.returncode != 0:
        said = next((line.strip() for line in done.stderr.splitlines() if line.strip()), "no message")
        raise CollectError(f"kubectl {' '.join(args[:2])} failed (exit {done.returncode}): {said}")
    return done.stdout


def collect_parts(name: str, namespace: str, kubectl: str = "kubectl") -> tuple[list[Part], list[str]]:
    """Every pod's parts, and a line for each pod whose log holds no result
    (CollectError when kubectl fails; CombineError 1 when there are no pods)."""
    if shutil.which(kubectl) is None:
        raise CollectError(f"{kubectl} not found: install kubectl or give --kubectl PATH")
    listing = json.loads(_kubectl(["get", "pods", "--namespace", namespace, "--selector",
                                   f"app.kubernetes.io/instance={name}", "--output", "json"], kubectl) or "{}")
    pods = [item["metadata"]["name"] for item in listing.get("items") or ()]
    if not pods:
        raise CombineError(1, f"no pods of {name} in namespace {namespace} (label app.kubernetes.io/instance={name}): "
                              "applied? already deleted?")
    parts, without = [], []
    for pod in sorted(pods):
        log = _kubectl(["logs", "--namespace", namespace, f"pod/{pod}", "--container", "surge"], kubectl)
        found = parts_of_log(log, f"pod/{pod}")
        if not found:
            last = next((line for line in reversed(log.splitlines()) if line.strip()), "(empty log)")
            without.append(f"pod/{pod}: no SURGE-RESULT line in its log (still running, or it failed; "
                           f"its last line: {last[:200]})")
        parts.extend(found)
    return parts, without
