"""Case files are parsed once: with a libyaml that bounds nesting itself, the depth limit is checked on the
composed nodes instead of a second pass over the events.  Both checks must name the same line."""

from __future__ import annotations

import gc
import random
from pathlib import Path

import pytest
import yaml

from symgrad.checking.cases import load_file
from symgrad.checking.cases import yaml_loading as Y
from symgrad.ir.limits import Limits

needs_bounded = pytest.mark.skipif(not Y._BOUNDED, reason="needs PyYAML with libyaml >= 0.2.6")


def _events_line(text: str, max_depth: int) -> int | None:
    """The line the event pass (the check on unbounded libyaml) names, or None."""
    try:
        Y._check_depth(text, max_depth)
    except Y._BadValue as exc:
        return exc.line
    return None


def _nodes_line(text: str, max_depth: int) -> int | None:
    return Y._deeper_than(yaml.compose(text, Loader=yaml.CSafeLoader), max_depth)


def _random_doc(rng: random.Random, depth: int, indent: int = 0) -> str:
    """A block or flow YAML value nested up to ``depth``, with anchors and aliases sprinkled in."""
    pad = " " * indent
    if depth == 0 or rng.random() < 0.15:
        return rng.choice(["1", "x", "'a'", "*A" if rng.random() < 0.3 else "2.5"])
    kind = rng.choice(["flow-seq", "flow-map", "block-seq", "block-map"])
    if kind == "flow-seq":
        return "[" + ", ".join(_flow(rng, depth - 1) for _ in range(rng.randint(1, 3))) + "]"
    if kind == "flow-map":
        return "{" + ", ".join(f"k{i}: {_flow(rng, depth - 1)}" for i in range(rng.randint(1, 3))) + "}"
    lines = []
    for i in range(rng.randint(1, 3)):
        child = _random_doc(rng, depth - 1, indent + 2)
        head = f"{pad}- " if kind == "block-seq" else f"{pad}k{i}:"
        if "\n" in child:
            lines.append(head.rstrip() + "\n" + child)
        else:
            lines.append(f"{head} {child}" if kind == "block-map" else head + child)
    return "\n".join(lines)


def _flow(rng: random.Random, depth: int) -> str:
    if depth == 0 or rng.random() < 0.2:
        return rng.choice(["1", "y", "*A" if rng.random() < 0.3 else "3"])
    inner = _flow(rng, depth - 1) if rng.random() < 0.5 else "[1]"
    return f"[{inner}]" if rng.random() < 0.5 else f"{{k: {inner}}}"


def _documents(count: int) -> list[str]:
    rng = random.Random(7)
    docs = []
    while len(docs) < count:
        body = _random_doc(rng, rng.randint(1, 9))
        text = "anchor: &A [[[1]]]\nbody:\n" + "\n".join("  " + line for line in body.splitlines()) + "\n"
        try:
            yaml.compose(text, Loader=yaml.CSafeLoader)
        except yaml.YAMLError:
            continue  # the generator makes some invalid YAML; only valid documents compare depths
        docs.append(text)
    return docs


@needs_bounded
def test_the_node_walk_names_the_line_the_event_pass_names():
    docs = _documents(300)
    hits = 0
    for text in docs:
        for max_depth in (1, 2, 3, 4, 6, 9):
            want = _events_line(text, max_depth)
            assert _nodes_line(text, max_depth) == want, (text, max_depth)
            hits += want is not None
    assert hits > 300  # many documents do go past the smaller limits: the comparison is not vacuous


@needs_bounded
def test_an_alias_of_a_deep_anchor_adds_no_depth():
    text = "a: &A [[[[1]]]]\nb: [[*A]]\n"  # the anchor is 5 deep (mapping + 4), the alias site 3
    assert _nodes_line(text, 5) is None and _events_line(text, 5) is None
    # the twin: the same nesting written out is 7 deep, and the limit 5 names its line
    written = "a: [[[[1]]]]\nb: [[\n  [[[[1]]]]]]\n"
    assert _nodes_line(written, 5) == _events_line(written, 5) == 3


@needs_bounded
@pytest.mark.parametrize("limit, line", [(3, 5), (4, 6), (6, 6)])
def test_load_file_refuses_one_level_past_the_limit_with_its_line(tmp_path: Path, limit: int, line: int):
    path = tmp_path / "deep.yaml"
    # the top mapping (1, line 1) > cases (2) > the case (3, line 2) > inputs (4, line 5: its first key)
    # > x (5, line 6) > [[1.0]] (6, 7)
    path.write_text("cases:\n  - name: d\n    expr: x\n    inputs:\n      x:\n        - [[1.0]]\n")
    _, (err,) = load_file(path, limits=Limits(max_yaml_depth=limit))
    assert f"nested deeper than the limit max_yaml_depth={limit}" in str(err) and err.line == line
    assert _events_line(path.read_text(), limit) == line  # the event pass named the same line
    cases, errors = load_file(path, limits=Limits(max_yaml_depth=7))  # the twin: within the limit it loads
    assert errors == [] and [c.name for c in cases] == ["d"]


def test_loading_leaves_the_garbage_collector_as_it_found_it(tmp_path: Path):
    path = tmp_path / "ok.yaml"
    path.write_text("cases:\n  - name: q\n    expr: x**2\n    inputs: {x: [1.0]}\n")
    assert gc.isenabled()
    assert load_file(path)[1] == [] and gc.isenabled()
    bad = tmp_path / "bad.yaml"
    bad.write_text("cases: [\n")  # an error on the way must restore it too
    assert load_file(bad)[1] and gc.isenabled()
    gc.disable()
    try:
        load_file(path)
        assert not gc.isenabled()  # nor does it switch on a collector its caller had switched off
    finally:
        gc.enable()
