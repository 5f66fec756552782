"""Typed values and value functions, end to end: what the server receives (issue 12 item 5)."""
from __future__ import annotations

import json
import time

from tests.helpers import run_surge
from tests.support.recording import RecordingServer


def test_a_json_field_that_is_one_slot_keeps_its_type_and_functions_stay_in_range(surge_server, tmp_path):
    demo = surge_server(app="demo")
    (tmp_path / "rows.jsonl").write_text('{"qty": 3, "tag": "x\\"y"}\n{"qty": 4.5, "tag": "z"}\n')
    with RecordingServer() as sink:
        plan = tmp_path / "plan.yaml"
        plan.write_text(f"""
name: typed
target: {demo.url}
load: {{model: closed, vus: 2, duration: 1s}}
data:
  rows: {{file: rows.jsonl}}
scenarios:
  - name: s
    steps:
      - name: item
        request: GET /items/7
        extract: {{id: {{json: "$.id"}}, stock: {{json: "$.in_stock"}}, name: {{json: "$.name"}},
                   nothing: {{json: "$.missing"}}}}
      - name: send
        request: "POST {sink.url}orders/${{random.int(1,999,pad=3)}}"
        headers: {{X-Stamp: "${{timestamp(iso)}}"}}
        json:
          id: "${{id}}"
          stock: "${{stock}}"
          name: "${{name}}"
          label: "item-${{id}}"
          nothing: "${{nothing}}"
          qty: "${{rows.qty}}"
          tag: "${{rows.tag}}"
          n: "${{random.int(1,100)}}"
          pad: "${{random.int(1,99,pad=3)}}"
          s: "${{random.string(8)}}"
          pick: "${{random.choice(a, \\"b, c\\")}}"
          num: "${{random.choice(1,2,3)}}"
          ms: "${{timestamp}}"
          sec: "${{timestamp(s)}}"
          it: "${{iteration}}"
""")
        started_ms = time.time() * 1000
        run = run_surge("run", str(plan), "-q", "-w", "1", timeout_s=60)
        ended_ms = time.time() * 1000
    assert run.code in (0, 3), run.stderr
    bodies = [json.loads(b) for b, h in zip(sink.bodies, sink.heads) if h.startswith(b"POST /orders/")]
    assert len(bodies) > 10
    for body in bodies:
        assert body["id"] == 7 and body["stock"] is False and body["name"] == "item 7"
        assert body["label"] == "item-7" and body["nothing"] is None
        assert (body["qty"], body["tag"]) in ((3, 'x"y'), (4.5, "z"))
        assert isinstance(body["n"], int) and 1 <= body["n"] <= 100
        assert isinstance(body["pad"], str) and len(body["pad"]) == 3 and 1 <= int(body["pad"]) <= 99
        assert isinstance(body["s"], str) and len(body["s"]) == 8 and body["s"].isalnum()
        assert body["pick"] in ("a", "b, c") and body["num"] in (1, 2, 3)
        assert started_ms - 1000 <= body["ms"] <= ended_ms and abs(body["sec"] - body["ms"] / 1000) < 2
        assert isinstance(body["it"], int)
    paths = [h.split(b" ")[1].decode() for h in sink.heads]
    assert all(len(p) == len("/orders/000") and 1 <= int(p[-3:]) <= 999 for p in paths), paths[:5]
    stamps = sink.header_values("X-Stamp")
    assert all(len(s) == 24 and s.endswith("Z") and s[10] == "T" for s in stamps)
    assert len({b["s"] for b in bodies}) > len(bodies) // 2      # random, not one value
