"""Tests for symgrad.report: the one Report type of the CLI, the API and the pytest plugin."""

import json
import math
import re

import numpy as np
import pytest

from symgrad.checking.compare import Comparison, compare
from symgrad.checking.report import STATUSES, Report, exit_code, summarize

TOL = dict(rtol=1e-7, atol=1e-7)


def tutorial_report(status="fail", a_tape=(36.0, 82.0)):
    ca = compare("a", list(a_tape), [36.0, 81.0], formula="9*a**2", **TOL)
    cb = compare("b", [-12.0, -8.0], [-12.0, -8.0], formula="-2*b", **TOL)
    return Report(
        name="tutorial-Q",
        status=status,
        file="cases/tutorial.yaml",
        line=3,
        mode="elementwise",
        expr="3*a**3 - b**2",
        comparisons=[ca, cb],
        duration=0.0123,
    )


# ----------------------------------------------------------------- verdict


@pytest.mark.parametrize("status", ["pass", "skip", "xfail"])
def test_good_statuses_are_truthy(status):
    assert bool(Report("c", status)) is True


@pytest.mark.parametrize("status", ["fail", "error", "xpass"])
def test_bad_statuses_are_falsy(status):
    assert bool(Report("c", status)) is False


def test_statuses_are_exactly_the_six():
    assert STATUSES == ("pass", "fail", "error", "skip", "xfail", "xpass")


def test_unknown_status_is_refused():
    with pytest.raises(ValueError, match="status"):
        Report("c", "passed")


def test_id_with_and_without_file():
    assert Report("q", "pass", file="cases/t.yaml").id == "cases/t.yaml::q"
    assert Report("q", "pass").id == "q"


def test_failed_comparisons():
    r = tutorial_report()
    assert [c.name for c in r.failed_comparisons] == ["a"]
    ok = tutorial_report("pass", a_tape=(36.0, 81.0))
    assert ok.failed_comparisons == []


# ----------------------------------------------------------------- table


def test_failure_table_shows_formula_index_values_errors_and_counts():
    text = tutorial_report().table()
    lines = text.splitlines()
    head = lines[0]
    assert head.startswith("FAIL tutorial-Q")
    for part in ("[symgrad]", "cases/tutorial.yaml:3", "3*a**3 - b**2", "(elementwise)"):
        assert part in head
    row_a = next(l for l in lines if l.split()[:1] == ["a"])
    assert "9*a**2" in row_a
    assert "1/2" in row_a  # mismatched / size
    assert "(1,)" in row_a  # worst index
    assert "82.0" in row_a and "81.0" in row_a  # tape and reference
    assert "1.00e+00" in row_a  # abs error
    assert "1.23e-02" in row_a  # rel error
    assert "7.0e+13" in row_a  # ulp (2**46)
    row_b = next(l for l in lines if l.split()[:1] == ["b"])
    assert "-2*b" in row_b and re.search(r"\bok\b", row_b)
    # the header row names every column
    header = next(l for l in lines if l.split()[:1] == ["input"])
    for col in ("formula", "mismatched", "worst index", "tape", "reference", "abs err", "rel err", "ulp"):
        assert col in header
    # tolerances stated once
    assert text.count("rtol=1e-07") == 1 and "atol=1e-07" in text


def test_table_columns_line_up():
    lines = tutorial_report().table().splitlines()
    header = next(l for l in lines if l.split()[:1] == ["input"])
    rows = [l for l in lines if l.split()[:1] in (["a"], ["b"])]
    col = header.index("worst index")
    assert all(r[col : col + 4] in ("(1,)", "(0,)") for r in rows)


def test_passing_table_has_no_mismatch_count():
    text = tutorial_report("pass", a_tape=(36.0, 81.0)).table()
    assert text.startswith("PASS tutorial-Q")
    assert "1/2" not in text
    assert re.search(r"^  a .*\bok\b", text, re.M)


def test_values_shown_with_enough_digits_to_differ():
    c = compare("x", [0.1 + 0.2], [0.3], rtol=0, atol=0, formula="x")
    text = Report("tiny", "fail", comparisons=[c]).table()
    assert "0.30000000000000004" in text and re.search(r"\b0\.3\b", text)


def test_table_shows_undefined_counts_only_when_nonzero():
    c = compare("x", [1.0, 5.0, 2.0], [1.0, np.nan, 3.0], formula="1/x", **TOL)
    text = Report("u", "fail", comparisons=[c]).table()
    assert "undefined" in text and "1/3" in text  # 1 of 3 undefined, 1 of 3 mismatched
    plain = tutorial_report().table()
    assert "undefined" not in plain


def test_table_shows_notes_and_shape_mismatch():
    c = compare("a", [1.0, 2.0], [1.0, 2.0, 3.0], formula="9*a**2", **TOL)
    text = Report("s", "fail", comparisons=[c]).table()
    assert "shape (2,) != (3,)" in text and "3/3" in text
    proved = Comparison(**{**c.__dict__, "mismatched": 0, "note": "proved equal"})
    assert "proved equal" in Report("s", "pass", comparisons=[proved]).table()
    assert "proved equal" not in text


def test_long_formula_printed_in_full_below_table():
    formula = "cos(x)*exp(x)/(1 + x**2) + sinh(x)*log(x)**2 - tanh(x)"
    c = compare("x", [1.0], [2.0], formula=formula, **TOL)
    text = Report("long", "fail", comparisons=[c]).table()
    assert formula in text


def test_different_tolerances_get_columns():
    c1 = compare("a", [1.0], [1.0], rtol=1e-7, atol=1e-7)
    c2 = compare("b", [1.0], [1.0], rtol=1e-3, atol=0.0)
    text = Report("t", "pass", comparisons=[c1, c2]).table()
    assert "0.001" in text and "1e-07" in text


def test_error_report_shows_reason_and_traceback_when_verbose():
    r = Report(
        "bad",
        "error",
        file="cases/x.yaml",
        line=7,
        reason="ZeroDivisionError: division by zero\nsecond line",
        traceback="Traceback (most recent call last):\n  File 'x', line 1\nZeroDivisionError",
    )
    short = r.table()
    assert short.splitlines()[0] == "ERROR bad: ZeroDivisionError: division by zero"
    assert "second line" not in short and "Traceback" not in short
    assert "cases/x.yaml:7" in short
    assert "Traceback (most recent call last):" in r.table(verbose=True)


def test_skip_and_xfail_text():
    assert Report("s", "skip", reason="needs torch").table().startswith("SKIP s: needs torch")
    x = tutorial_report("xfail")
    x.reason = "known bug #12"
    text = x.table()
    assert text.startswith("XFAIL tutorial-Q") and "known bug #12" in text and "1/2" in text
    xp = Report("p", "xpass", reason="known bug #12")
    assert "passed" in xp.table() and "known bug #12" in xp.table()


def test_summary_line():
    ok = tutorial_report("pass", a_tape=(36.0, 81.0))
    ok.file = None
    assert ok.summary_line() == "PASS tutorial-Q (elementwise)"
    bad = tutorial_report()
    line = bad.summary_line()
    assert line.startswith("FAIL cases/tutorial.yaml::tutorial-Q (elementwise)")
    assert "a" in line and "1/2" in line
    assert Report("e", "error", reason="boom\nmore").summary_line() == "ERROR e: boom"


# ----------------------------------------------------------------- serialisation


def test_to_dict_is_json_serialisable_and_round_trips():
    r = tutorial_report()
    r.comparisons.append(compare("c", [np.inf, np.nan], [-np.inf, 1.0], **TOL))
    d = r.to_dict()
    text = json.dumps(d, allow_nan=False)
    loaded = json.loads(text)
    assert loaded["id"] == "cases/tutorial.yaml::tutorial-Q"
    assert loaded["status"] == "fail" and loaded["line"] == 3
    assert loaded["comparisons"][0]["formula"] == "9*a**2"
    assert loaded["comparisons"][2]["max_abs"] == "inf"
    back = Report.from_dict(loaded)
    assert back.to_dict() == d
    assert back.name == r.name and back.file == r.file and back.duration == r.duration
    assert back.comparisons[0] == r.comparisons[0]
    assert back.comparisons[2].max_abs == math.inf
    assert back.table() == r.table()
    assert bool(back) is False


def test_to_dict_has_every_field():
    d = Report("q", "skip", reason="r").to_dict()
    for key in ("name", "status", "file", "line", "backend", "mode", "expr", "comparisons",
                "reason", "traceback", "duration"):
        assert key in d
    assert Report.from_dict(d) == Report("q", "skip", reason="r")


# ----------------------------------------------------------------- summarize / exit_code


def reports(*statuses):
    return [Report(f"c{i}", s) for i, s in enumerate(statuses)]


def test_summarize_plain():
    text = summarize(reports("pass", "pass", "pass", "fail"), 0.4212)
    assert text == "3 passed, 1 failed, 0 errors in 0.42 s"


def test_summarize_with_skips_and_xfails():
    text = summarize(reports("pass", "skip", "skip", "xfail", "error"), 1.0)
    assert text == "1 passed, 0 failed, 2 skipped, 1 xfailed, 1 errors in 1.00 s"
    assert re.search(r"\d+ passed, \d+ failed.*\d+ errors in \d+\.\d\d s$", text)


def test_summarize_with_xpass_and_empty():
    assert summarize(reports("xpass"), 0) == "0 passed, 0 failed, 1 xpassed, 0 errors in 0.00 s"
    assert summarize([], 0.005) == "0 passed, 0 failed, 0 errors in 0.01 s"


def test_exit_code_all_good_is_zero():
    assert exit_code(reports("pass", "skip", "xfail")) == 0
    assert exit_code([]) == 0


def test_exit_code_failure_is_one():
    assert exit_code(reports("pass", "fail")) == 1
    assert exit_code(reports("pass", "xpass")) == 1


def test_exit_code_error_is_two_and_wins_over_failure():
    assert exit_code(reports("pass", "error")) == 2
    assert exit_code(reports("fail", "error")) == 2
    assert exit_code(reports("pass"), file_errors=1) == 2
    assert exit_code(reports("fail"), file_errors=1) == 2
    assert exit_code(reports("fail"), file_errors=0) == 1
