"""`surge k8s`: the manifests it prints validate against Kubernetes 1.30's
schemas (strict), and the Job's own container command, run here three times
as the pods would run it (JOB_COMPLETION_INDEX set, the barrier on loopback),
gives parts that `surge merge` sums to the exact total, counted by nginx."""
import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from bench.nginx import free_port
from surge.k8s.manifests import MOUNT_DIR, expand_like_kubernetes
from tests.helpers import assert_one_line_error, SurgeRun
from tests.support.segment_nginx import LoggingNginx

K8S_VERSION = "1.30.0"
PARALLELISM = 3


def surge(*args: str, timeout_s: float = 60, **kwargs) -> SurgeRun:
    done = subprocess.run([sys.executable, "-m", "surge", *args], capture_output=True, text=True,
                          timeout=timeout_s, **kwargs)
    return SurgeRun(done.returncode, done.stdout, done.stderr, None)


def manifests(*args: str, cwd=None) -> list[dict]:
    run = surge("k8s", *args, cwd=cwd)
    assert run.code == 0, run.stderr
    docs = [doc for doc in yaml.safe_load_all(run.stdout) if doc]
    assert [d["kind"] for d in docs] == ["ConfigMap", "Service", "Job"]
    return docs


PLAN = """
name: Shop Browse
target: {url}
load: {{vus: 6, duration: 60s}}         # the unique rows end it
objectives:
  - error_rate < 1%
data:
  users: {{file: data/users.csv, order: unique, on_exhausted: stop}}
scenarios:
  - name: browse
    steps: [{{name: item, request: "GET /item/${{users.id}}"}}]
"""


def write_plan(folder, url: str, rows: int) -> str:
    (folder / "data").mkdir(exist_ok=True)
    (folder / "data" / "users.csv").write_text("id\n" + "".join(f"{i}\n" for i in range(rows)))
    path = folder / "shop.yaml"
    path.write_text(PLAN.format(url=url))
    return str(path)


@pytest.mark.parametrize("args", [
    ["http://example.test:8080/", "-p", "3", "-n", "30000", "-c", "6"],
    ["PLAN", "--parallelism", "4", "--namespace", "load", "--image", "registry.test/surge:1", "--cpu", "1500m",
     "--memory", "2Gi", "--secret", "shop-credentials"],
], ids=["url", "plan"])
def test_every_manifest_validates_against_kubernetes_1_30_strict(tmp_path, args):
    kubernetes_validate = pytest.importorskip(
        "kubernetes_validate", reason="kubernetes-validate not installed (pip install -e '.[test]')")
    if args[0] == "PLAN":
        args = [write_plan(tmp_path, "http://shop.test/", 40), *args[1:]]
    for doc in manifests(*args):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)     # raises ValidationError


def test_the_job_is_indexed_without_retries_and_sized(tmp_path):
    plan = write_plan(tmp_path, "http://shop.test/", 40)
    configmap, service, job = manifests(plan, "-p", "4", "--cpu", "2", "--memory", "1Gi")
    assert job["metadata"]["name"] == "surge-shop-browse"
    spec = job["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == ("Indexed", 4, 4)
    assert spec["backoffLimitPerIndex"] == 0 and spec["template"]["spec"]["restartPolicy"] == "Never"
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert container["resources"]["requests"] == container["resources"]["limits"] == {"cpu": "2", "memory": "1Gi"}
    env = {e["name"]: e.get("value") for e in container["env"]}
    # pod 0's stable name: hostname NAME-0 in the headless Service's subdomain
    assert pod["subdomain"] == service["metadata"]["name"] == "surge-shop-browse"
    assert service["spec"]["clusterIP"] == "None"
    assert env["SURGE_BARRIER"] == "surge-shop-browse-0.surge-shop-browse.default.svc:7000"
    assert container["args"][-8:] == ["--segment", "$(JOB_COMPLETION_INDEX)/4", "--barrier", "$(SURGE_BARRIER)",
                                      "--emit-result", "--prometheus", "$(SURGE_PROMETHEUS)", "-q"]
    assert container["args"][-10:-8] == ["-w", "2"]        # the CPU asked, not the node's count
    assert pod["securityContext"]["runAsNonRoot"] is True
    # the plan and its data file travel in the ConfigMap, at their relative paths
    items = {i["path"]: i["key"] for i in pod["volumes"][0]["configMap"]["items"]}
    assert set(items) == {"shop.yaml", "data/users.csv"}
    assert configmap["data"][items["data/users.csv"]].splitlines()[:2] == ["id", "0"]
    assert container["workingDir"] == MOUNT_DIR and container["args"][1] == "shop.yaml"


@pytest.mark.parametrize("args, culprit", [
    (["--json", "out.json"], "--json"),
    (["--auth", "user:secret"], "--auth"),
    (["-H", "Authorization: Bearer abc"], "-H Authorization"),
    (["--segment", "0/2"], "--segment"),
    (["-c", "2"], "-c 2"),
    (["--no-such-option"], "--no-such-option"),
])
def test_what_a_pod_cannot_use_is_one_line_exit_2(args, culprit):
    run = surge("k8s", "http://example.test/", "-p", "3", *args)
    assert_one_line_error(run, 2, culprit)
    assert "abc" not in run.stderr and "user:secret" not in run.stderr


def materialise(configmap: dict, job: dict, folder) -> None:
    """The ConfigMap's files where the pod's volume puts them."""
    volume = job["spec"]["template"]["spec"]["volumes"][0]["configMap"]
    for item in volume.get("items") or ():
        path = folder / item["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(configmap["data"][item["key"]])


def test_the_pods_command_run_three_times_merges_to_the_exact_total(tmp_path):
    """The Job's container command, as the kubelet would run it: args expanded
    from the container's env ($(VAR)), JOB_COMPLETION_INDEX per pod, the barrier
    and the metrics address on loopback (the pods' one-machine stand-in)."""
    from bench.nginx import nginx_available
    ok, reason = nginx_available()
    if not ok:
        pytest.skip(f"nginx not available: {reason}")
    rows = 3000
    with LoggingNginx() as server:
        plan = write_plan(tmp_path, server.url, rows)
        configmap, _, job = manifests(plan, "-p", str(PARALLELISM), "--cpu", "1")
        pod_dir = tmp_path / "pod"
        pod_dir.mkdir()
        materialise(configmap, job, pod_dir)
        (container,) = job["spec"]["template"]["spec"]["containers"]
        barrier = f"127.0.0.1:{free_port()}"
        before = server.requests()
        started = []
        for index in range(PARALLELISM):
            env = {**os.environ, **{e["name"]: e["value"] for e in container["env"] if "value" in e},
                   "JOB_COMPLETION_INDEX": str(index), "SURGE_BARRIER": barrier,
                   "SURGE_PROMETHEUS": f"127.0.0.1:{free_port()}"}
            argv = [expand_like_kubernetes(a, env) for a in container["command"] + container["args"]]
            assert argv[0] == "surge"
            argv[0] = shutil.which("surge", path=os.path.dirname(sys.executable)) or "surge"
            out = open(tmp_path / f"pod-{index}.log", "w")
            started.append((subprocess.Popen(argv, cwd=pod_dir, env=env, stdout=out, stderr=subprocess.PIPE,
                                             text=True), out))
        codes = []
        for proc, out in started:
            try:
                _, stderr = proc.communicate(timeout=120)
            finally:
                if proc.poll() is None:
                    proc.kill()
                out.close()
            codes.append((proc.returncode, stderr))
        served = server.requests() - before
    assert [code for code, _ in codes] == [0] * PARALLELISM, codes
    merged_path = tmp_path / "merged.json"
    done = surge("merge", *(str(tmp_path / f"pod-{i}.log") for i in range(PARALLELISM)), "--json", str(merged_path))
    assert done.code == 0, done.stderr
    merged = json.loads(merged_path.read_text())
    assert merged["totals"]["requests"] == rows == served
    assert merged["latency"]["count"] == rows
    assert merged["merge"]["merged"] == [0, 1, 2]
    assert merged["objectives"][0]["passed"] is True


def test_collect_without_a_cluster_is_one_line_exit_1(tmp_path):
    """The real kubectl, pointed at a cluster that is not there (an empty
    kubeconfig, a closed port): one line saying which kubectl call failed."""
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl not installed")
    config = tmp_path / "kubeconfig"
    config.write_text(f"""apiVersion: v1
kind: Config
clusters: [{{name: none, cluster: {{server: "http://127.0.0.1:{free_port()}"}}}}]
contexts: [{{name: none, context: {{cluster: none, user: none}}}}]
users: [{{name: none, user: {{}}}}]
current-context: none
""")
    run = surge("k8s", "collect", "shop", "--namespace", "load", timeout_s=120,
                env={**os.environ, "KUBECONFIG": str(config)})
    assert_one_line_error(run, 1, "surge k8s collect: error: kubectl get pods failed")
    absent = surge("k8s", "collect", "shop", "--kubectl", str(tmp_path / "no-kubectl"))
    assert_one_line_error(absent, 1, "no-kubectl not found")


def test_a_plans_ca_file_travels_beside_it_and_its_client_key_is_refused(tmp_path):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    plan = tmp_path / "tls.yaml"
    body = """name: tls
target: https://shop.test/
tls: {TLS}
load: {vus: 3, duration: 5s}
scenarios:
  - name: a
    steps: [{name: home, request: "GET /"}]
"""
    plan.write_text(body.replace("{TLS}", "{cacert: ca.pem}"))
    configmap, _, job = manifests(str(plan), "-p", "3")
    items = {i["path"]: i["key"] for i in job["spec"]["template"]["spec"]["volumes"][0]["configMap"]["items"]}
    assert set(items) == {"tls.yaml", "ca.pem"}
    assert configmap["data"][items["ca.pem"]] == ca.cert_pem.bytes().decode()
    leaf = ca.issue_cert("client.test")
    leaf.cert_chain_pems[0].write_to_path(str(tmp_path / "client.pem"))
    leaf.private_key_pem.write_to_path(str(tmp_path / "client.key"))
    plan.write_text(body.replace("{TLS}", "{cacert: ca.pem, cert: client.pem, key: client.key}"))
    run = surge("k8s", str(plan), "-p", "3")
    assert_one_line_error(run, 2, "tls: cert/key would be printed")
    assert "PRIVATE KEY" not in run.stdout + run.stderr


def test_the_image_recipe_matches_the_manifests():
    """deploy/Dockerfile (built by `make image`, not here: no container daemon
    in the test environment): a wheel built in a first stage, a slim Python
    runtime, and the non-root user the pods' securityContext names."""
    from pathlib import Path
    text = (Path(__file__).resolve().parents[2] / "deploy" / "Dockerfile").read_text()
    stages = [line.split() for line in text.splitlines() if line.startswith("FROM ")]
    assert len(stages) == 2 and stages[0][-2:] == ["AS", "build"]
    assert all(stage[1].startswith("python:") and stage[1].endswith("-slim") for stage in stages)
    assert "pip wheel" in text and "--from=build /wheels" in text and "--no-index" in text
    user = next(line.split()[1] for line in text.splitlines() if line.startswith("USER "))
    _, _, job = manifests("http://example.test/", "-p", "2")
    pod = job["spec"]["template"]["spec"]["securityContext"]
    assert user == f"{pod['runAsUser']}:{pod['runAsGroup']}"
    assert job["spec"]["template"]["spec"]["containers"][0]["image"].startswith("surge:")


@pytest.mark.parametrize("arg", ["plain", "$(HOME)", "a$$b", "$$(HOME)", "$", "cost: $5", "$$$("])
def test_an_argument_reaches_the_pod_as_typed(arg):
    """escape_for_kubernetes then the kubelet's expansion gives the argument back,
    even with a literal $$ (which the kubelet reads as one $)."""
    from surge.k8s.manifests import escape_for_kubernetes
    assert expand_like_kubernetes(escape_for_kubernetes(arg), {"HOME": "/root"}) == arg
