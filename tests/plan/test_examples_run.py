"""Every plan in examples/ runs green against `surge serve --app demo`: each
exits 0 with every objective passed.  The plans run at the same time (they are
light: ~220, ~60 and ~50 requests/s), so the test lasts as long as the longest."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PLANS = sorted(p for p in EXAMPLES.iterdir() if p.suffix in (".yaml", ".yml", ".toml"))
# shop.toml is shop.yaml's twin (tests/plan/test_plan_examples.py checks they load
# into the same Plan); running both would only double the longest plan's load.
RUN = [p for p in PLANS if p.name != "shop.toml"]


def test_every_example_plan_passes_against_the_demo_app(surge_server, tmp_path):
    server = surge_server(app="demo", workers=2)
    base = f"http://127.0.0.1:{server.port}"
    # microservices.yaml reaches the auth service as `localhost`: two pools, one target.
    env = {**os.environ, "TARGET_URL": base, "GATEWAY_URL": base, "AUTH_URL": f"http://localhost:{server.port}"}
    running = []
    for plan in RUN:
        out = tmp_path / f"{plan.stem}.json"
        cmd = [sys.executable, "-m", "surge", "run", str(plan), "-q", "-w", "1", "--json", str(out)]
        running.append((plan, out, subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                                    stderr=subprocess.PIPE, text=True)))
    assert {p.name for p, _, _ in running} >= {"shop.yaml", "smoke.yaml", "microservices.yaml"}
    for plan, out, proc in running:
        stdout, stderr = proc.communicate(timeout=180)
        assert proc.returncode == 0, (plan.name, proc.returncode, stderr[-2000:], stdout[-2000:])
        result = json.loads(out.read_text())
        objectives = result["objectives"]
        assert objectives and all(o["passed"] for o in objectives), (plan.name, objectives)
        assert result["totals"]["requests"] > 0
        if result["config"]["model"] == "open":      # a plan's open model starts iterations, not requests
            assert "iterations/s" in stdout and "virtual users" in stdout, (plan.name, stdout)
