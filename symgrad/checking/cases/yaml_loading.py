"""YAML with line numbers: a SafeLoader (or libyaml's CSafeLoader) that records the line of every mapping,
sequence and key, refuses duplicate keys and tags, and guards nesting depth."""

from __future__ import annotations

import gc
from typing import Any

import yaml

from symgrad.checking.cases.errors import CaseError
from symgrad.ir.limits import DEFAULT, LimitExceeded, Limits


class _Map(dict):
    """A YAML mapping that knows its line, each key's line and its duplicate keys."""

    def __init__(self, *args: Any, line: int | None = None):
        super().__init__(*args)
        self.line = line
        self.key_lines: dict[Any, int] = {}
        self.duplicates: list[tuple[Any, int, int]] = []  # (key, line, first line)


class _Seq(list):
    """A YAML sequence that knows its line and each item's line."""

    line: int | None = None
    item_lines: list[int]


class _Refused(Exception):
    def __init__(self, tag: str, line: int):
        self.tag, self.line = tag, line


class _BadValue(Exception):
    def __init__(self, reason: str, line: int | None):
        self.reason, self.line = reason, line


class _Constructor:
    """Shared by both loaders: a scalar that its tag cannot hold is an error with the node's line."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)  # type: ignore[misc]
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError) as exc:
            # PyYAML's own scalar constructors fail this way on `!!int abc`, `2001-13-45`, ...
            raise _BadValue(f"invalid {node.tag.replace('tag:yaml.org,2002:', '!!')} value: {exc}",
                            _line(node)) from None


class _Loader(_Constructor, yaml.SafeLoader):
    """SafeLoader that records lines, keeps duplicate keys for reporting and refuses unknown tags."""

    depth = 0
    max_depth = DEFAULT.max_yaml_depth

    def compose_node(self, parent: Any, index: Any) -> Any:
        # a depth bound, so deep nesting is an error with a line rather than a RecursionError
        self.depth += 1
        try:
            if self.depth > self.max_depth:
                line = self.peek_event().start_mark.line + 1
                raise _BadValue(f"nested deeper than the limit max_yaml_depth={self.max_depth}", line)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


# The same with libyaml's parser and composer, when PyYAML was built with it: five times faster, which a
# suite of hundreds of cases notices.  Its composer recurses in C, where deep nesting crashes the
# process, so its (iterative) event stream is checked for depth first (see _check_depth).
_CLoader: Any = None
if getattr(yaml, "__with_libyaml__", False):
    class _CLoader(_Constructor, yaml.CSafeLoader):  # type: ignore[no-redef]
        """The same as _Loader, parsed and composed by libyaml."""
_NESTING_START = (yaml.SequenceStartEvent, yaml.MappingStartEvent)
_NESTING_END = (yaml.SequenceEndEvent, yaml.MappingEndEvent)


def _check_depth(text: str, max_depth: int) -> None:
    depth = 0
    for event in yaml.parse(text, Loader=yaml.CSafeLoader):
        if isinstance(event, _NESTING_START):
            depth += 1
            if depth > max_depth:
                mark = event.start_mark
                raise _BadValue(f"nested deeper than the limit max_yaml_depth={max_depth}",
                                mark.line + 1 if mark is not None else None)
        elif isinstance(event, _NESTING_END):
            depth -= 1


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> Any:
    if not isinstance(node, yaml.MappingNode):  # `!!map abc`: checked before the yield, inside the guard
        raise _BadValue(f"a !!map tag on a {node.id}", _line(node))
    data = _Map(line=_line(node))
    yield data
    for key_node, _ in node.value:  # explicit keys only: `<<` merges may be overridden
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            first = data.key_lines.get(key)
        except TypeError:
            continue  # unhashable key: construct_mapping reports it
        if first is not None:
            data.duplicates.append((key, _line(key_node), first))
        else:
            data.key_lines[key] = _line(key_node)
    data.update(loader.construct_mapping(node))


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> Any:
    if not isinstance(node, yaml.SequenceNode):
        raise _BadValue(f"a !!seq tag on a {node.id}", _line(node))
    data = _Seq()
    data.line, data.item_lines = _line(node), [_line(n) for n in node.value]
    yield data
    data.extend(loader.construct_sequence(node))


def _refuse(loader: _Loader, node: yaml.Node) -> Any:
    tag = node.tag.replace("tag:yaml.org,2002:", "!!")
    raise _Refused(tag, _line(node))


for _cls in (_Loader, _CLoader) if _CLoader is not None else (_Loader,):
    _cls.add_constructor("tag:yaml.org,2002:map", _construct_map)
    _cls.add_constructor("tag:yaml.org,2002:seq", _construct_seq)
    _cls.add_constructor(None, _refuse)  # every tag SafeLoader does not know (!!python/..., !Ref)


def _libyaml_version() -> tuple[int, ...]:
    try:
        return tuple(yaml._yaml.get_version())
    except (AttributeError, TypeError):  # pragma: no cover - an unusual build
        return (0,)


# libyaml 0.2.6 and later refuse nesting past 1000 levels (flow and block) while parsing, before the composer
# recurses; an older one would recurse until the process dies, so its events are checked first (_check_depth)
_BOUNDED = _CLoader is not None and _libyaml_version() >= (0, 2, 6)


def _deeper_than(root: yaml.Node, max_depth: int) -> int | None:
    """The line of the first collection (in document order) nested deeper than ``max_depth``, or None.

    Walks the composed nodes as _check_depth walks the events: a collection counts one level, an alias
    (the same node met again) none."""
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if id(node) in seen or isinstance(node, yaml.ScalarNode):
            continue
        seen.add(id(node))
        if depth > max_depth:
            return _line(node)
        children = [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else node.value
        stack.extend((child, depth + 1) for child in reversed(children))
    return None


def _loader(text: str, max_depth: int) -> Any:
    """libyaml's loader when PyYAML has it and the nesting is within ``max_depth``, else PyYAML's own.

    With a libyaml that bounds nesting itself (_BOUNDED), the depth is checked on the composed nodes
    (see _load_with): one parse of the text instead of two."""
    if _CLoader is not None:
        try:
            if not _BOUNDED:
                _check_depth(text, max_depth)
            return _CLoader(text)
        except yaml.MarkedYAMLError as exc:
            if "nesting depth" not in str(exc.problem):
                raise
    return _python_loader(text, max_depth)


def _python_loader(text: str, max_depth: int) -> Any:
    # libyaml >= 0.2.6 bounds nesting itself (at 1000), scanning ahead of its events: the pure-Python
    # loader applies max_depth exactly, and names the line
    loader = _Loader(text)
    loader.max_depth = max_depth
    return loader


def _load_with(loader: Any, text: str, max_depth: int) -> tuple[Any, Any]:
    """(the loaded document, the loader that loaded it: ``loader`` or the pure-Python one it fell back to)."""
    if not _BOUNDED or type(loader) is not _CLoader:  # (tests swap _CLoader for None)
        return loader.get_single_data(), loader
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        if "nesting depth" not in str(exc.problem):
            raise
        loader.dispose()
        fallback = _python_loader(text, max_depth)
        return fallback.get_single_data(), fallback
    if node is None:
        return None, loader
    line = _deeper_than(node, max_depth)
    if line is not None:
        raise _BadValue(f"nested deeper than the limit max_yaml_depth={max_depth}", line)
    return loader.construct_document(node), loader


def _load_yaml(text: str, file: str | None, limits: Limits = DEFAULT) -> Any:
    if len(text) > limits.max_file_bytes:
        raise CaseError(str(LimitExceeded("max_file_bytes", len(text), limits.max_file_bytes, "file size")), file)
    loader: Any = None
    enabled = gc.isenabled()
    gc.disable()  # what loading builds holds no cycles worth collecting meanwhile; collections cost a fifth
    try:
        loader = _loader(text, limits.max_yaml_depth)
        data, loader = _load_with(loader, text, limits.max_yaml_depth)
    except _BadValue as exc:
        raise CaseError(f"invalid YAML: {exc.reason}", file, exc.line) from None
    except _Refused as exc:
        raise CaseError(f"YAML tag {exc.tag!r} is not allowed (case files are plain YAML)",
                        file, exc.line) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        reason = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise CaseError(f"invalid YAML: {reason}", file, line) from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise CaseError(f"invalid YAML: {type(exc).__name__}: {exc}", file) from None
    finally:
        if enabled:
            gc.enable()
        if loader is not None:
            loader.dispose()
    size = _expanded_size(data)
    if size > limits.max_elements:  # aliases can make a few bytes expand to billions of values
        raise CaseError(str(LimitExceeded("max_elements", size, limits.max_elements, "values in the file")), file)
    return data


def _expanded_size(obj: Any) -> int:
    """How many values ``obj`` holds with every alias expanded (each shared node counted once per use)."""
    memo: dict[int, int] = {}

    def size(item: Any) -> int:
        if not isinstance(item, (dict, list)):
            return 1
        if id(item) not in memo:
            memo[id(item)] = 0  # a recursive alias counts once
            children = list(item.keys()) + list(item.values()) if isinstance(item, dict) else item
            memo[id(item)] = 1 + sum(size(c) for c in children)
        return memo[id(item)]

    try:
        return size(obj)
    except RecursionError:
        return 0  # the YAML depth limit already bounds what loading produces


def _first_duplicate(obj: Any) -> tuple[Any, int, int] | None:
    """The first duplicate key anywhere in a loaded YAML tree (shared aliases visited once)."""
    seen: set[int] = set()
    stack = [obj]
    while stack:
        item = stack.pop()
        if id(item) in seen or not isinstance(item, (dict, list)):
            continue
        seen.add(id(item))
        if isinstance(item, _Map) and item.duplicates:
            return item.duplicates[0]
        stack.extend(reversed(list(item.values() if isinstance(item, dict) else item)))
    return None


