"""Output paths checked up front, every report written that can be (surge.report.outputs),
and the exit-code precedence at the end of a run (surge.cli.main.worst_exit)."""
import json
import os

import pytest

from surge.cli.main import worst_exit
from surge.report.outputs import OutputPathError, check_paths, requested, write_all
from tests.report.synthetic import make_result


def _refused(tmp_path, **paths) -> str:
    with pytest.raises(OutputPathError) as info:
        check_paths(requested(**paths))
    message = str(info.value)
    assert "\n" not in message
    return message


def test_good_paths_pass(tmp_path):
    (tmp_path / "old.json").write_text("{}")          # replacing a file is fine
    files = requested(json_path=tmp_path / "old.json", html_path=tmp_path / "r.html",
                      csv_path=tmp_path / "r.csv", hlog_path="relative.hlog")
    assert len(files) == 4
    assert check_paths(files) is None                 # OutputPathError when one is refused
    assert check_paths(requested(json_path="-")) is None
    assert (tmp_path / "old.json").read_text() == "{}" and not (tmp_path / "r.html").exists()   # checked, not written


@pytest.mark.parametrize("option", ["json_path", "html_path", "csv_path", "hlog_path"])
def test_a_missing_directory_names_the_option_and_the_path(tmp_path, option):
    path = tmp_path / "nonexistent" / "x.out"
    flag = "--" + option.removesuffix("_path")
    assert _refused(tmp_path, **{option: path}) == f"{flag} {path}: directory {path.parent} does not exist"


def test_a_directory_is_not_a_file(tmp_path):
    assert _refused(tmp_path, html_path=tmp_path) == f"--html {tmp_path}: is a directory, expected a file path"


def test_a_file_is_not_a_directory(tmp_path):
    (tmp_path / "plain").write_text("")
    path = tmp_path / "plain" / "x.json"
    assert _refused(tmp_path, json_path=path) == f"--json {path}: {tmp_path / 'plain'} is not a directory"


def test_the_csv_steps_file_is_checked_too(tmp_path):
    (tmp_path / "run.steps.csv").mkdir()
    message = _refused(tmp_path, csv_path=tmp_path / "run.csv")
    assert message.startswith(f"--csv {tmp_path / 'run.csv'}: its steps file {tmp_path / 'run.steps.csv'}: "
                              "is a directory")


def test_two_options_on_one_file(tmp_path):
    message = _refused(tmp_path, json_path=tmp_path / "r", html_path=tmp_path / "r")
    assert message == f"--html {tmp_path / 'r'}: the same file as --json; give each its own path"


def test_only_json_goes_to_stdout(tmp_path):
    assert _refused(tmp_path, html_path="-") == "--html -: only --json can be written to standard output"


def test_an_input_is_not_overwritten(tmp_path):
    with pytest.raises(OutputPathError, match="the same file as RESULT.json"):
        check_paths(requested(csv_path=tmp_path / "r.json"), inputs={"RESULT.json": str(tmp_path / "r.json")})


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere: permissions cannot be tested")
def test_an_unwritable_directory(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    assert "is not writable" in _refused(tmp_path, json_path=locked / "x.json")


def test_one_failed_writer_does_not_lose_the_others(tmp_path):
    result = make_result(3, model="closed")
    said = []
    outputs = requested(json_path=tmp_path / "gone" / "r.json", html_path=tmp_path / "r.html",
                        csv_path=tmp_path / "r.csv", hlog_path=tmp_path / "r.hlog")
    failures = write_all(result, outputs, said.append)
    assert [(f.option, f.code) for f in failures] == [("--json", 1)]
    assert failures[0].line("surge run") == (f"surge run: error: cannot write --json {tmp_path / 'gone' / 'r.json'}: "
                                             "No such file or directory")
    for name in ("r.html", "r.csv", "r.steps.csv", "r.hlog"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert len(said) == 3 and said[0].startswith(f"wrote {tmp_path / 'r.html'} (")


def test_a_bug_in_one_report_is_a_failure_not_a_crash(tmp_path, monkeypatch):
    import surge.report.html as html

    def broken(result, path):
        raise KeyError("latency")
    monkeypatch.setattr(html, "write_html", broken)
    result = make_result(3, model="closed")
    failures = write_all(result, requested(json_path=tmp_path / "r.json", html_path=tmp_path / "r.html",
                                           hlog_path=tmp_path / "r.hlog"), lambda text: None)
    assert [(f.option, f.code) for f in failures] == [("--html", 1)]
    assert "internal error: KeyError" in failures[0].reason
    assert json.loads((tmp_path / "r.json").read_text())["totals"] == result["totals"]
    assert (tmp_path / "r.hlog").exists()


def test_an_hlog_without_histograms_is_a_usage_failure(tmp_path):
    result = make_result(3, model="closed", per_interval_hdr=False)
    del result["latency"]["hdr"]
    failures = write_all(result, requested(hlog_path=tmp_path / "r.hlog"), lambda text: None)
    assert [(f.option, f.code) for f in failures] == [("--hlog", 2)]


def test_json_to_stdout(tmp_path, capsys):
    result = make_result(2, model="closed")
    assert write_all(result, requested(json_path="-"), lambda text: None) == []
    assert json.loads(capsys.readouterr().out)["totals"] == result["totals"]


@pytest.mark.parametrize("codes, expected", [
    ((), 0), ((0,), 0), ((0, 3), 3), ((3, 3, 0), 3), ((3, 1), 1), ((1, 130, 3), 130), ((2, 3), 2),
    ((1, 2), 1), ((0, 0, 3), 3),
])
def test_exit_code_precedence(codes, expected):
    assert worst_exit(*codes) == expected
