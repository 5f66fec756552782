"""CSV export of the time series and the per-step table."""
import csv

from surge.report.csv_export import steps_path, write_csv
from tests.report.synthetic import make_result


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_timeseries_rows_match_points(tmp_path):
    result = make_result(10, seed=5)
    written = write_csv(result, tmp_path / "run.csv")
    assert written == [str(tmp_path / "run.csv"), str(tmp_path / "run.steps.csv")]
    rows = read(tmp_path / "run.csv")
    assert len(rows) == 10
    columns = list(rows[0])
    assert columns[:4] == ["t", "interval_s", "requests", "requests_per_s"]
    for row, point in zip(rows, result["timeseries"]):
        assert int(row["requests"]) == point["requests"]
        assert int(row["p99_us"]) == point["p99"]
        assert int(row["p99_uncorrected_us"]) == point["p99_uncorrected"]
        assert int(row["status_200"]) + int(row["status_404"]) == point["requests"]
        assert float(row["worker1_cpu_percent"]) == point["workers"][1]["cpu_percent"]
        assert float(row["target"]) == point["target"] and int(row["dropped"]) == point["dropped"]
        assert int(row["due"]) == point["due"]
    assert "hdr" not in columns                 # histograms go to the hlog, not the CSV
    assert sum(int(r["requests"]) for r in rows) == result["totals"]["requests"]


def test_steps_file(tmp_path):
    result = make_result(10, seed=5)
    write_csv(result, tmp_path / "run.csv")
    steps = read(tmp_path / "run.steps.csv")
    assert [s["name"] for s in steps] == ["warm", "peak"]
    assert int(steps[0]["requests"]) == result["steps"][0]["requests"]
    assert int(steps[1]["latency_p99_us"]) == result["steps"][1]["latency"]["percentiles"]["99"]


def test_no_steps_one_file(tmp_path):
    result = make_result(3, seed=1, steps=False)
    assert write_csv(result, tmp_path / "a.csv") == [str(tmp_path / "a.csv")]
    assert not (tmp_path / "a.steps.csv").exists()


def test_partial_last_interval_and_real_shape(tmp_path):
    """Today's real points (t, requests, errors, p50, p99, max) with a partial last second."""
    result = make_result(3, seed=1, model="closed", statuses=False, per_point_workers=False,
                         per_interval_hdr=False, steps=False)
    result["timeseries"][-1]["t"] = 2.5
    write_csv(result, tmp_path / "r.csv")
    rows = read(tmp_path / "r.csv")
    assert list(rows[0]) == ["t", "interval_s", "requests", "requests_per_s", "errors", "p50_us", "p90_us", "p99_us",
                            "max_us"]
    assert float(rows[-1]["interval_s"]) == 0.5
    assert float(rows[-1]["requests_per_s"]) == result["timeseries"][-1]["requests"] / 0.5


def test_steps_path():
    assert steps_path("out/run.csv") == "out/run.steps.csv"
    assert steps_path("run") == "run.steps.csv"
