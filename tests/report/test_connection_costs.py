"""Issue 11's sections in every report: connections opened, connect and TLS
handshake percentiles, the negotiated TLS, handshakes full/resumed, TLS error
reasons, keep-alive off; and files from before them still report as before."""
import copy
import csv
import json

from surge.core._histogram import Histogram
from surge.report.compare import compare
from surge.report.csv_export import write_csv
from surge.report.hlog import write_hlog
from surge.report.html import render_html
from surge.report.summary import render_summary
from surge.result.load import load_result
from tests.helpers import run_surge
from tests.report.synthetic import add_connection_costs, make_result


def _tls_result(**options) -> dict:
    return add_connection_costs(make_result(6, model="closed", seed=11), **options)


def _us(value: float) -> str:
    from surge.report.summary import _us as shown
    return shown(value)


def test_the_summary_names_the_negotiated_tls_and_says_verified():
    result = _tls_result()
    text = render_summary(result)
    assert "  TLS  TLSv1.3 TLS_AES_128_GCM_SHA256 X25519, verified\n" in text + "\n"
    hs = result["tls_handshake"]
    assert (f"handshake p50 {_us(hs['percentiles']['50'])}  p99 {_us(hs['percentiles']['99'])}  "
            f"max {_us(hs['max'])}; handshakes 64 full, 0 resumed") in text
    connect = result["connect"]
    assert f"Connections: 64 opened, connect p50 {_us(connect['percentiles']['50'])}" in text
    assert "TLS errors: alert 40: 1, certificate verify failed: 2" not in text      # the most frequent first
    assert "TLS errors: certificate verify failed: 2, alert 40: 1" in text
    assert "NOT VERIFIED" not in text and "keep-alive off" not in text


def test_insecure_and_keepalive_off_are_said_plainly():
    result = _tls_result(verify=False, keepalive=False)
    text = render_summary(result)
    assert "X25519, NOT VERIFIED (--insecure)" in text
    assert "  keep-alive off: latency includes connect and handshake" in text
    # keep-alive off: one connection per request, resumed after the first few
    opened = result["totals"]["connections_opened"]
    assert opened == result["totals"]["requests"]
    assert f"Connections: {opened:,} opened ({opened / 6:,.0f}/s), connect p50" in text
    shakes = result["tls"]["handshakes"]
    assert f"handshakes {shakes['full']:,} full, {shakes['resumed']:,} resumed" in text
    page = render_html(result)
    assert "TLS NOT VERIFIED (--insecure)" in page and "keep-alive off: latency includes" in page
    from surge.report.numbers import format_rate, format_us
    assert (f'<div class="v">{format_rate(opened / 6)}</div><div class="k">connections / s</div>') in page
    p50 = format_us(result["tls_handshake"]["percentiles"]["50"])
    assert f'<div class="v">{p50}</div><div class="k">p50 TLS handshake</div>' in page


def test_only_the_top_tls_error_reasons_are_named():
    reasons = {f"reason {i:02d}": i for i in range(1, 10)}
    text = render_summary(_tls_result(tls_errors=reasons))
    line = next(line for line in text.splitlines() if "TLS errors:" in line)
    assert line.strip() == ("TLS errors: reason 09: 9, reason 08: 8, reason 07: 7, reason 06: 6, reason 05: 5, "
                            "4 more reasons: 10")


def test_ktls_says_which_directions_took_effect():
    result = _tls_result()
    result["tls"].update(ktls=True, ktls_send=True, ktls_recv=False)
    assert "X25519, verified, kTLS (send only)" in render_summary(result)
    result["tls"].update(ktls_recv=True)
    line = next(line for line in render_summary(result).splitlines() if line.startswith("  TLS  "))
    assert line == "  TLS  TLSv1.3 TLS_AES_128_GCM_SHA256 X25519, verified, kTLS"
    assert "on (send, receive)" in render_html(result)
    result["tls"].update(ktls=False, ktls_send=False, ktls_recv=False)
    result["config"]["tls"] = {"verify": True, "ktls": True}
    assert "verified, kTLS asked for but not in effect" in render_summary(result)


def test_no_handshake_completed_is_not_shown_as_a_cipher():
    result = _tls_result()
    result["tls"].update(protocol=None, cipher=None, group=None)
    assert "  TLS  no handshake completed, verified" in render_summary(result)


def test_the_html_tables_and_charts_connections():
    result = _tls_result(keepalive=False)
    page = render_html(result)
    table = page[page.index('id="surge-connections"'):]
    table = table[:table.index("</table>")]
    assert "TLSv1.3 TLS_AES_128_GCM_SHA256 X25519" in table and "verified" in table
    assert f"{result['totals']['connections_opened']:,}" in table
    assert "TLS error: certificate verify failed</th><td class=\"l\">2<" in table
    figures = json.loads(page[page.index('id="surge-figures">') + len('id="surge-figures">'):].split("</script>")[0])
    connections = next(f for f in figures if f["id"] == "connections")
    opened = connections["data"][0]
    assert opened["name"] == "connections opened/s"
    assert opened["y"] == [float(p["connections_opened"]) for p in result["timeseries"]]


def test_csv_and_hlog_carry_each_seconds_connection_costs(tmp_path):
    result = _tls_result(keepalive=False)
    write_csv(result, tmp_path / "r.csv")
    rows = list(csv.DictReader(open(tmp_path / "r.csv")))
    for row, point in zip(rows, result["timeseries"]):
        hist = Histogram.decode(point["hdr_connect"])
        assert int(row["connections_opened"]) == point["connections_opened"]
        assert int(row["connect_p99_us"]) == hist.value_at_percentile(99)
        assert int(row["tls_handshake_max_us"]) == Histogram.decode(point["hdr_tls_handshake"]).max
    assert write_hlog(result, tmp_path / "r.hlog") == 3 * len(result["timeseries"])
    lines = (tmp_path / "r.hlog").read_text().splitlines()
    tagged = [line for line in lines if line.startswith("Tag=connect,")]
    assert len(tagged) == len(result["timeseries"])
    merged = Histogram()
    for line in tagged:
        merged.add(Histogram.decode(line.rsplit(",", 1)[1]))
    assert merged.total_count == result["connect"]["count"]
    assert sum(1 for line in lines if line.startswith("Tag=tls_handshake,")) == len(result["timeseries"])


def test_keepalive_runs_tag_only_the_seconds_that_connected(tmp_path):
    result = _tls_result()         # all 64 connections in the first second
    write_hlog(result, tmp_path / "r.hlog")
    tagged = [line for line in (tmp_path / "r.hlog").read_text().splitlines() if line.startswith("Tag=connect,")]
    assert len(tagged) == 1 and tagged[0].startswith("Tag=connect,0.000,1.000,")


def test_compare_shows_connection_costs_side_by_side_only_when_both_have_them():
    base = _tls_result(keepalive=False)
    slower = add_connection_costs(make_result(6, model="closed", seed=12), keepalive=False,
                                  handshake_median_us=3000.0)
    text = compare(base, slower).render()
    assert "new connections (whole-run percentiles, shown beside each other: outside the gate)" in text
    row = next(line for line in text.splitlines() if line.strip().startswith("handshake p50"))
    from surge.report.numbers import format_us
    before, after = (r["tls_handshake"]["percentiles"]["50"] for r in (base, slower))
    assert row.split() == ["handshake", "p50", format_us(before), format_us(after),
                           f"{(after - before) / before * 100:+.1f}%"]
    assert "keep-alive off" not in text                         # both off: no configuration note
    old = make_result(6, model="closed", seed=12)
    for a, b in ((base, old), (old, base)):
        assert "new connections" not in compare(a, b).render()
    assert "keep-alive on -> off" in compare(old, base).render()
    # plain http on both sides: connect rows, no handshake rows
    plain = [add_connection_costs(make_result(6, model="closed", seed=s), tls=False) for s in (1, 2)]
    text = compare(*plain).render()
    assert "connect p99" in text and "handshake" not in text


def test_a_file_from_before_tls_reports_as_before(tmp_path):
    old = make_result(6, model="closed", seed=11)
    old["totals"]["errors"].pop("tls", None)           # a file written before the error kind existed
    assert "connect" not in old and "connections_opened" not in old["totals"]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    loaded = load_result(path)
    text = render_summary(loaded)
    assert "TLS" not in text and "Connections:" not in text
    assert "surge-connections" not in render_html(loaded)
    write_csv(loaded, tmp_path / "old.csv")
    assert "connections_opened" not in (tmp_path / "old.csv").read_text().splitlines()[0]
    new = tmp_path / "new.json"
    new.write_text(json.dumps(_tls_result()))
    for args in (("report", str(path)), ("report", str(new)), ("compare", str(path), str(new))):
        run = run_surge(*args, json_result=False)
        assert run.code == 0, run.stderr
    assert "TLS  TLSv1.3" in run_surge("report", str(new), json_result=False).stdout


def test_a_plain_http_result_has_connections_but_no_tls_lines():
    result = add_connection_costs(make_result(6, model="closed"), tls=False)
    text = render_summary(result)
    assert "Connections: 64 opened" in text and "TLS" not in text
    page = render_html(copy.deepcopy(result))
    assert "<h3>Connections</h3>" in page and "TLS handshake" not in page


def test_a_tls_report_renders_in_chromium_with_the_connections_chart(chromium_page, tmp_path):
    from surge.report.html import write_html
    path = tmp_path / "tls.html"
    write_html(_tls_result(keepalive=False, verify=False), path)
    page = chromium_page.load(path, tmp_path / "profile")
    assert page.console == [] and page.status.get("errors") == "", (page.console, page.status)
    ids = [box["id"] for box in page.status["layout"]]
    assert ids == ["throughput", "latency-over-time", "spectrum", "responses-errors", "connections",
                   "client-cpu", "client-memory"]
    assert page.status["rendered"] == str(len(ids))


def test_keepalive_off_in_the_open_model_says_latency_leaves_the_connect_out():
    """The open model opens each request's connection ahead of its due time, so
    its latency does not hold the connect and handshake: the summary must not
    claim it does."""
    result = _tls_result(verify=True, keepalive=False)
    result["config"].update(model="open", rate=1000, max_connections=64)
    text = render_summary(result)
    assert "latency includes connect" not in text
    assert "keep-alive off: a new connection per request, opened ahead of its due time: " \
           "latency excludes connect and handshake" in text
    page = render_html(result)
    assert "latency includes connect" not in page and "latency excludes connect and handshake" in page
