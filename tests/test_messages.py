"""Messages that point at the fix: each with its exact text, and a twin where the same input is fine."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

import symgrad
from symgrad.backends import BackendUnavailable
from symgrad.checking.cases import CaseError, collect
from symgrad.cli import main


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


# ---------------------------------------------------------------- missing inputs, misspelt ops and keywords


def test_missing_input_says_so():
    with pytest.raises(CaseError) as info:
        symgrad.check("x*y", x=1.0)
    assert info.value.reason == "expr does not parse: no input given for 'y' at column 3: x*y"
    assert "unknown name" not in str(info.value)
    assert symgrad.check("x*y", x=1.0, y=2.0)  # the twin: with y given, it checks


def test_missing_input_in_a_case_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("cases:\n  - {name: c, expr: x*y, inputs: {x: 1.0}}\n  - {name: d, expr: x*y, "
                    "inputs: {x: 1.0, y: 2.0}}\n")
    cases, errors = collect([str(path)])
    assert [c.name for c in cases] == ["d"]
    assert str(errors[0]).endswith("case 'c': expr does not parse: no input given for 'y' at column 3: x*y")


def test_misspelt_op_gets_a_did_you_mean():
    with pytest.raises(CaseError, match=r"unknown function 'sigmod'; did you mean 'sigmoid'\? at column 1"):
        symgrad.check("sigmod(x)", x=1.0)
    assert symgrad.check("sigmoid(x)", x=1.0)
    with pytest.raises(CaseError) as info:  # nothing close: no suggestion
        symgrad.check("frobnicate(x)", x=1.0)
    assert "did you mean" not in str(info.value)


def test_misspelt_op_keyword_gets_a_did_you_mean():
    with pytest.raises(CaseError, match=r"unknown keyword 'axs' for sum\(\); did you mean 'axis'\?"):
        symgrad.check("sum(x, axis=0) + sum(x, axs=0)", x=[1.0, 2.0])
    assert symgrad.check("sum(x, axis=0)", x=[1.0, 2.0])


def test_misspelt_case_keyword_gets_a_did_you_mean():
    with pytest.raises(TypeError, match=r"'ordr' is neither a case key .* nor a name in 'x\*\*2'; "
                                        r"did you mean 'order'\?$"):
        symgrad.check("x**2", x=1.0, ordr=2)
    assert len(symgrad.check("x**2", x=1.0, order=2).gradients) == 2


def test_misspelt_yaml_key_still_gets_one(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("cases:\n  - {name: c, expr: x, inputs: {x: 1.0}, ordr: 2}\n")
    _, errors = collect([str(path)])
    assert str(errors[0]).endswith("; did you mean 'order'?")


# ---------------------------------------------------------------- backends


def test_unknown_backend_in_the_api_raises():
    with pytest.raises(BackendUnavailable, match=r"^unknown backend 'torh'; available: .*torch"):
        symgrad.check("x**2", x=1.0, backend="torh")
    with pytest.raises(BackendUnavailable, match="unknown backend 'torh'"):
        symgrad.assert_gradients("x**2", x=1.0, backend="torh")
    assert symgrad.check("x**2", x=1.0, backend="symgrad")


def test_unknown_backend_on_the_command_line_is_one_usage_error(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("cases:\n  - {name: a, expr: x, inputs: {x: 1.0}}\n  - {name: b, expr: 2*x, inputs: {x: 1.0}}\n")
    res = invoke("check", "--timeout", "0", "--backend", "symgrad", "--backend", "torh", str(path))
    assert res.exit_code == 2
    assert res.output.count("unknown backend 'torh'") == 1
    assert "Invalid value for --backend: unknown backend 'torh'; available:" in res.output
    assert "passed" not in res.output and "ERROR" not in res.output  # before any case ran
    res = invoke("check", "--timeout", "0", "--backend", "no_such_module_xyz:Thing", str(path))
    assert res.exit_code == 2 and "cannot load backend 'no_such_module_xyz:Thing'" in res.output
    res = invoke("check", "--timeout", "0", "--backend", "symgrad", str(path))  # the twin
    assert res.exit_code == 0 and "2 passed" in res.output


def test_unknown_backend_for_grad_and_plot():
    res = invoke("grad", "x**2", "--at", "x=1", "--backend", "torh")
    assert res.exit_code == 2 and "Invalid value for --backend: unknown backend 'torh'" in res.output
    assert invoke("grad", "x**2", "--at", "x=1", "--backend", "symgrad").exit_code == 0


# ---------------------------------------------------------------- symgrad grad


def test_grad_errors_name_no_case():
    res = invoke("grad", "x*y", "--at", "x=1")
    assert res.exit_code == 2
    assert "Error: expr does not parse: no input given for 'y' at column 3: x*y" in res.output
    assert "case 'check'" not in res.output


def test_grad_help_shows_its_own_exit_codes():
    grad_help = invoke("grad", "--help").output
    assert "0  every compared element matched" in grad_help and "1  a gradient or the value mismatched" in grad_help
    assert "every case passed" not in grad_help
    assert "every case passed" in invoke("check", "--help").output  # check keeps its own


def test_grad_takes_2d_inputs():
    res = invoke("grad", "x**2", "--at", "x=[[1,2],[3,4]]")
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert "           sympy: [[2. 4.]" in lines and "                   [6. 8.]]" in lines
    assert lines[-1] == "PASS (elementwise, symgrad)"
    res = invoke("grad", "sum(x, axis=0)", "--at", "x=[[1, 2], [3, 4]]")
    assert res.exit_code == 0 and res.output.splitlines()[0].startswith("value      sum(x, axis=0) = [4. 6.]")


@pytest.mark.parametrize("value", ["[[1,2],[3]]", "[__import__('os')]", "[[1, 'a']]", "[]", "[[1, true]]",
                                   "[1, {a: 1}]"])
def test_grad_refuses_what_is_not_a_nested_list_of_numbers(value):
    res = invoke("grad", "x", "--at", f"x={value}")
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "nested list" in res.output or "ragged" in res.output


def test_grad_says_undefined_where_sympy_is_nan():
    res = invoke("grad", "log(x)", "--at", "x=-1,2")
    assert res.exit_code == 0
    assert "           undefined at 1 of 2 elements (sympy's derivative is nan there): not compared" in res.output
    assert res.output.splitlines()[-1] == "PASS (elementwise, symgrad); undefined: value 1/2, x 1/2"
    res = invoke("grad", "log(x)", "--at", "x=-1")  # nothing defined: an error, never a PASS
    assert res.exit_code == 2 and "PASS" not in res.output
    assert res.output.startswith("ERROR: nothing compared: the only element undefined")
    res = invoke("grad", "log(x)", "--at", "x=1,2")  # the twin: all defined, no undefined line
    assert res.exit_code == 0 and "undefined" not in res.output


# ---------------------------------------------------------------- symgrad --help


def test_help_shows_whole_summaries():
    out = invoke("--help").output
    flat = " ".join(out.split())
    assert "..." not in out[out.index("Commands:"):]
    for name, command in main.commands.items():
        summary = " ".join(command.help.split("\n\n")[0].split())
        assert summary in flat, (name, summary)
    assert "Run every case in the case files and folders PATHS (default: cases/)." in flat


def test_help_summaries_twin_plain_click_cuts_them():
    import click

    plain = click.Group("symgrad", commands=main.commands)
    out = CliRunner().invoke(plain, ["--help"]).output
    assert "..." in out[out.index("Commands:"):]
