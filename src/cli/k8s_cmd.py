"""`surge k8s TARGET|plan.yaml --parallelism N [run options]`: print the
manifests of a run spread over N pods (surge.k8s.manifests), and
`surge k8s collect NAME`: the pods' results through `kubectl logs`, merged and
judged as `surge merge` does.

The run options are `surge run`'s own: they are parsed and the workload built
here, as `surge run` would (a typo or a plan problem is exit 2 before anything
is printed), then passed to the pods as typed.  What a pod cannot use is
refused with one line: local files other than the plan's data (no volume but
the ConfigMap), outputs (the pods' results come back through their logs:
give --json/--html/--baseline to `surge k8s collect`), and secrets, which the
manifests would print (a Secret given with --secret feeds the plan's
${env.NAME} instead).
"""
from __future__ import annotations

import os
from collections.abc import Mapping

import click

from surge import __version__
from surge.cli.main import EXIT_RUNTIME, EXIT_USAGE, SurgeExit
from surge.cli.merge_cmd import merge_options

DEFAULT_IMAGE = f"surge:{__version__}"          # `make image` builds it (deploy/Dockerfile)

# surge run options a pod cannot use, and why (the option's parameter name -> the reason).
_REFUSED = {
    "json_path": "the pods' results come back in their logs: give --json to `surge k8s collect`",
    "html_path": "give --html to `surge k8s collect`",
    "csv_path": "give --csv to `surge k8s collect`",
    "hlog_path": "give --hlog to `surge k8s collect`",
    "baseline_path": "the gate judges the whole run: give --baseline to `surge k8s collect`",
    "junit_path": "give --junit to `surge k8s collect`",
    "summary_path": "give --summary-json to `surge k8s collect`",
    "prometheus_address": "the pods serve /metrics on their pod IP, port 9464, already",
    "watch_pid": "a pod cannot watch a process of another machine",
    "segment": "each pod gets its own from the Job (--parallelism)",
    "barrier": "the pods meet at pod 0's barrier, set by surge k8s",
    "start_at": "the pods start together through pod 0's barrier",
    "emit_result": "surge k8s adds it",
    "targets": "a pod cannot read local files: only a plan and its data files travel (in the ConfigMap)",
    "cacert": "a pod cannot read local files: bake the CA into an image (--image) or use -k",
    "cert": "the client certificate and key would be printed in the manifests: bake them into an image",
    "key": "the private key would be printed in the manifests: bake it into an image (--image)",
    "keylog": "a pod's key log would stay in the pod",
    "auth": "the password would be printed in the manifests: put it in a Secret (--secret) and use a plan's "
            "auth with ${env.NAME}",
}


class _AnyEnv(Mapping):
    """The environment a plan is checked with here: every ${env.NAME} is
    defined (the pods' come from --secret or the image), with the local value
    where there is one.  Only checking: nothing of it is printed."""

    def __getitem__(self, key):
        return os.environ.get(key, "x")

    def __contains__(self, key):
        return True

    def __iter__(self):
        return iter(os.environ)

    def __len__(self):
        return len(os.environ)


class K8sGroup(click.Group):
    """`surge k8s collect NAME`, and otherwise `surge k8s TARGET ...` (the manifests)."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["generate", *args]
        return super().parse_args(ctx, args)


@click.group(cls=K8sGroup, context_settings={"help_option_names": ["-h", "--help"]})
def k8s_command():
    """Run on Kubernetes.  `surge k8s TARGET|PLAN --parallelism N [surge run options]`
    prints a ConfigMap (the plan and its data files), a headless Service (the
    barrier) and an Indexed Job of N pods, for `kubectl apply -f -`;
    `surge k8s collect NAME` merges the pods' results (see `surge merge`)."""


@k8s_command.command("generate", context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                                                   "help_option_names": ["-h", "--help"]})
@click.argument("target", metavar="TARGET|PLAN")
@click.option("--parallelism", "-p", type=click.IntRange(1, 10_000), required=True,
              help="Pods (segments) the run is spread over.")
@click.option("--image", default=DEFAULT_IMAGE, show_default=True, help="The container image (make image).")
@click.option("--namespace", default="default", show_default=True)
@click.option("--name", help="Name of the Job, Service and ConfigMap (default: surge-<plan name>, or surge).")
@click.option("--cpu", default="2", show_default=True,
              help="CPU each pod requests and is limited to (also its -w unless given).")
@click.option("--memory", default="1Gi", show_default=True, help="Memory each pod requests and is limited to.")
@click.option("--secret", metavar="SECRET",
              help="A Secret whose keys become the pods' environment (a plan's ${env.NAME}).")
@click.pass_context
def generate_command(ctx, target, parallelism, image, namespace, name, cpu, memory, secret):
    """Print the manifests (run options after TARGET are surge run's)."""
    from surge.k8s.manifests import JobSpec, dump_manifests, escape_for_kubernetes, manifests, name_problem

    run_args = list(ctx.args)
    run_ctx, workload = _checked_run(target, run_args)
    _check_shares(workload, parallelism)
    workers = _cpu_count(cpu)
    name = name or _default_name(workload)
    for option, value in (("--name", name), ("--namespace", namespace)):
        problem = name_problem(value)
        if problem:
            raise SurgeExit(EXIT_USAGE, f"surge k8s: error: {option}: {problem}")
    if secret is not None and name_problem(secret):
        raise SurgeExit(EXIT_USAGE, f"surge k8s: error: --secret: {name_problem(secret)}")
    files, pod_target = _files(target, workload)
    if run_ctx.get_parameter_source("workers") != click.core.ParameterSource.COMMANDLINE:
        run_args += ["-w", str(workers)]
    spec = JobSpec(name=name, namespace=namespace, image=image, parallelism=parallelism,
                   run_args=tuple(escape_for_kubernetes(a) for a in [pod_target, *run_args]),
                   files=tuple(files), cpu=cpu, memory=memory, secret=secret)
    click.echo(dump_manifests(manifests(spec)), nl=False)


def _checked_run(target: str, run_args: list[str]):
    """surge run's parse of the options, and the workload they make (exit 2 on any problem)."""
    from surge.cli.run_cmd import run_command, run_options
    from surge.plan.build import build_workload, looks_like_plan, plan_workload

    try:
        run_ctx = run_command.make_context("surge k8s", [target, *run_args], resilient_parsing=False)
    except click.UsageError as exc:
        raise SurgeExit(EXIT_USAGE, f"surge k8s: error: {exc.format_message()}") from None
    params = {p.name: p for p in run_command.params}
    for key, reason in _REFUSED.items():
        if run_ctx.get_parameter_source(key) == click.core.ParameterSource.COMMANDLINE:
            raise SurgeExit(EXIT_USAGE, f"surge k8s: error: {'/'.join(params[key].opts)}: {reason}")
    body = run_ctx.params.get("body")
    if body and str(body).startswith("@"):
        raise SurgeExit(EXIT_USAGE, "surge k8s: error: --body @FILE: a pod cannot read local files: "
                                    "use a plan (its body and data travel in the ConfigMap)")
    _refuse_secrets(target, run_ctx.params.get("headers") or ())
    load = {k: v for k, v in run_ctx.params.items() if k in _LOAD_OPTIONS}
    options = run_options(run_ctx, load)
    if looks_like_plan(target):
        built = plan_workload(target, options, environ=_AnyEnv())
    else:
        built = build_workload(target, options)
    if built.problems:
        raise SurgeExit(EXIT_USAGE, "\n".join(p.text if p.in_plan_file else f"surge k8s: error: {p.text}"
                                              for p in built.problems))
    return run_ctx, built.workload


# surge run's parameters that are load and request options (RunOptions), not outputs or launch options.
_LOAD_OPTIONS = ("connections", "duration", "requests", "workers", "method", "headers", "body", "auth", "follow",
                 "timeout", "pipeline", "pipeline_timing", "rate", "max_connections", "stages", "shape",
                 "schedule_grid", "disable_keepalive", "insecure", "cacert", "cert", "key", "sni", "tls_min",
                 "tls_max", "ciphers", "tls13_ciphers", "groups", "keylog", "tls_resume", "ktls", "targets", "order")


def _refuse_secrets(target: str, headers) -> None:
    from surge.plan.redact import is_secret_header, redact_url

    if "://" in target and redact_url(target) != target:
        raise SurgeExit(EXIT_USAGE, f"surge k8s: error: {redact_url(target)}: credentials in the URL would be "
                                    "printed in the manifests: put them in a Secret (--secret) and a plan")
    for header in headers:
        name = header.partition(":")[0].strip()
        if is_secret_header(name):
            raise SurgeExit(EXIT_USAGE, f"surge k8s: error: -H {name}: the value would be printed in the "
                                        "manifests: put it in a Secret (--secret) and use ${env.NAME} in a plan")


def _check_shares(workload, parallelism: int) -> None:
    """Each pod needs a user (and with -n a request), as `surge run --segment` checks."""
    from surge.cli.launch_options import share_check
    from surge.run.segment import parse_segment
    from surge.run.start import Launch

    try:
        share_check(Launch(segment=parse_segment(f"0/{parallelism}")), workload)
    except SurgeExit as exc:
        raise SurgeExit(exc.code, exc.message.replace("surge run: error: --segment 0/", "surge k8s: error: "
                                                      "--parallelism ")) from None


def _cpu_count(cpu: str) -> int:
    """Workers for a CPU quantity: '2' -> 2, '1500m' -> 1 (at least 1)."""
    text = str(cpu).strip()
    try:
        cores = int(text[:-1]) / 1000 if text.endswith("m") else float(text)
    except ValueError:
        raise SurgeExit(EXIT_USAGE, f"surge k8s: error: --cpu: got {cpu!r}, expected cores like 2, 0.5 or 1500m")
    if not cores > 0:
        raise SurgeExit(EXIT_USAGE, f"surge k8s: error: --cpu: got {cpu!r}, must be > 0")
    return max(1, int(cores))


def _default_name(workload) -> str:
    import re
    from surge.plan.workload import PlanSource

    source = workload.source
    base = source.name if isinstance(source, PlanSource) else ""
    slug = re.sub(r"[^a-z0-9]+", "-", base.lower()).strip("-")[:40]
    return f"surge-{slug}" if slug else "surge"


def _tls_files(workload) -> set[str]:
    """A plan's `tls: cacert:` files (they travel beside the plan); its client
    certificate and key are refused: the ConfigMap would print the key."""
    found = set()
    for host in getattr(workload, "hosts", None) or (workload.target,):
        options = getattr(host, "tls", None)
        if options is None:
            continue
        if options.cert or options.key:
            raise SurgeExit(EXIT_USAGE, "surge k8s: error: the plan's tls: cert/key would be printed in the "
                                        "manifests (a ConfigMap): bake them into an image built FROM "
                                        f"{DEFAULT_IMAGE} and give --image")
        if options.cacert:
            found.add(os.path.abspath(options.cacert))
    return found


def _files(target: str, workload):
    """The plan and its data files for the ConfigMap, and the pod's TARGET
    (the plan's path under the mount, or the URL as given)."""
    from surge.k8s.manifests import CONFIGMAP_MAX_BYTES, DataFile
    from surge.plan.workload import PlanSource

    if not isinstance(workload.source, PlanSource):
        return [], target
    plan_path = os.path.abspath(target)
    plan_dir = os.path.dirname(plan_path)
    paths = [plan_path] + sorted({os.path.abspath(d.path) for d in workload.data} | _tls_files(workload))
    files = []
    for path in paths:
        relative = os.path.relpath(path, plan_dir)
        if relative.startswith(".." + os.sep) or os.path.isabs(relative):
            raise SurgeExit(EXIT_USAGE, f"surge k8s: error: {path}: a data file outside the plan's folder "
                                        f"{plan_dir}: move it beside the plan, so the pods find it at the same "
                                        "relative path")
        try:
            with open(path, "rb") as f:
                content = f.read()
        except OSError as exc:
            raise SurgeExit(EXIT_RUNTIME, f"surge k8s: error: cannot read {path}: {exc.strerror or exc}") from None
        files.append(DataFile(relative.replace(os.sep, "/"), content))
    total = sum(len(f.content) for f in files)
    if total > CONFIGMAP_MAX_BYTES:
        raise SurgeExit(EXIT_USAGE, f"surge k8s: error: the plan and its data files are {total / 1e6:.1f} MB; a "
                                    f"ConfigMap holds at most 1 MB: build an image with them (FROM {DEFAULT_IMAGE}, "
                                    "COPY) and give --image")
    return files, files[0].path


@k8s_command.command("collect", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("name")
@click.option("--namespace", default="default", show_default=True)
@click.option("--kubectl", default="kubectl", show_default=True, help="The kubectl to run.")
@merge_options
def collect_command(name, namespace, kubectl, **options):
    """Merge the results of the pods of NAME (their SURGE-RESULT log lines), as `surge merge` does."""
    from surge.cli.merge_cmd import merge_and_judge
    from surge.k8s.collect import CollectError, collect_parts

    def read():
        try:
            parts, without = collect_parts(name, namespace, kubectl)
        except CollectError as exc:
            raise SurgeExit(EXIT_RUNTIME, f"surge k8s collect: error: {exc}") from None
        for line in without:
            if not options["allow_partial"]:
                raise SurgeExit(EXIT_RUNTIME, f"surge k8s collect: error: {line}; --allow-partial merges the rest")
            click.echo(f"surge k8s collect: warning: {line}", err=True)
        return parts

    return merge_and_judge("surge k8s collect", read, [], **options)
