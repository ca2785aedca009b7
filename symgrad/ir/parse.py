"""Safe string -> IR: parse the expression language with :mod:`ast` and a whitelist.

Accepted: int and float literals, declared input names, the constants ``pi`` and
``e``, ``+ - * / ** @``, unary ``-`` and ``+``, parentheses, and calls of the op
table's functions (by name or alias) with positional arguments and ``axis=``
where the op takes one.  Everything else is refused with a :class:`ParseError`
that names the offending token and its column.  Nothing in the text is ever
evaluated: no ``eval``/``exec``, no code object, no ``sympify`` -- only ``ast.parse``.

Limits (:class:`~symgrad.limits.Limits`) are checked while parsing, before
sympy or numpy see anything: text length (before ``ast.parse``), tree depth,
node count, digits of integer literals, and the size of every constant
subexpression's value, estimated with logarithms so that ``9**9**9**9`` is
refused without ever being computed.
"""

from __future__ import annotations

import ast
import functools
import keyword
import math
import re
import sys
import unicodedata
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from symgrad.ir import ops
from symgrad.ir.expr import Call, Const, Expr, Var, call, to_source
from symgrad.ir.limits import DEFAULT, LimitExceeded, Limits
from symgrad.ir.ops import Op, did_you_mean

__all__ = ["ParseError", "check_ir", "parse"]

_SHOWN = 80  # characters of the text shown in an error message


class ParseError(ValueError):
    """An expression was refused.

    ``column`` is the 1-based character position of ``token`` in ``text`` (its
    column, for one-line text), or None when no position applies.
    """

    def __init__(self, text: str, reason: str, column: int | None = None, token: str | None = None):
        self.text, self.reason, self.column, self.token = text, reason, column, token
        where = f" at column {column}" if column is not None else ""
        super().__init__(f"{reason}{where}: {_excerpt(text, column)}")

    def __reduce__(self) -> tuple:  # picklable, e.g. across pytest-xdist or -j workers
        return (type(self), (self.text, self.reason, self.column, self.token))


def _excerpt(text: str, column: int | None) -> str:
    """At most ~80 printable characters of ``text``, around ``column`` when it lies further on."""
    start = 0
    if column is not None and column > _SHOWN - 20:
        start = column - _SHOWN // 2
    shown = text[start:start + _SHOWN]
    shown = "".join(c if c.isprintable() else " " for c in shown)
    return ("..." if start else "") + shown + ("..." if start + _SHOWN < len(text) else "")


# ---------------------------------------------------------------- constant-size estimates
#
# A constant-only subtree carries an estimate (sign, log10|value|) (see ops.Est).  Ops whose float
# forward would overflow first size it from their arguments' (``Op.magnitude``); every other op
# runs its numpy forward on floats: an overflow there is a value too big to count.

Est = ops.Est


def _estimate(op: Op, args: list[tuple[int, float]]) -> Est:
    if op.magnitude is not None:
        return op.magnitude(*args)
    if op.kind in (ops.REDUCTION, ops.LINALG):  # of scalars: the scalar (matmul of scalars is refused later)
        return args[0] if len(args) == 1 else _estimate(ops.mul, args)
    try:
        with np.errstate(over="raise", divide="ignore", invalid="ignore"):
            value = float(op.forward(*(ops.float_of(a) for a in args)))
    except FloatingPointError:  # overflow: more digits than a float holds
        return (1, math.inf)
    except (ValueError, TypeError, ArithmeticError):
        return None
    if math.isfinite(value) or any(math.isinf(ops.float_of(a)) for a in args):
        return ops.est_of(value)
    return None  # log(0), 0/0: no finite real to size


# Exact sizes.  sympy keeps the operators (+ - * / **) of integer constants exact: the float estimate
# above sees (1+10**-29)**(10**29) as 1.0 while sympy would build a rational of 10**30 digits.  An
# exact constant carries (log10 |numerator|, log10 denominator), bounded from its arguments'; any
# other op of constants is folded to a float by the reference, so its result is not tracked (None).

Exact = tuple[float, float] | None


def _exact_of(value: object) -> Exact:
    """The exact size of a literal: integers (and integral floats, which the reference reads as integers)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        return None
    n = abs(int(value))
    return (math.log10(n) if n > 1 else 0.0, 0.0)


_PI_E_SIZE = (0.5, 0.0)  # pi and e stay symbols: counted as a one-digit number, to be safe


def _exact(op: Op, args: list[Exact], ests: list[Est]) -> Exact:
    if op.infix is None or op.kind == ops.LINALG or any(a is None for a in args):
        return None
    if len(args) == 1:  # -x
        return args[0]
    (na, da), (nb, db) = args  # type: ignore[misc]
    if op is ops.add or op is ops.sub:  # a/b + c/d = (ad + cb) / bd
        return (max(na + db, nb + da) + 0.31, da + db)
    if op is ops.mul:
        return (na + nb, da + db)
    if op is ops.div:
        return (na + db, da + nb)
    # a ** (p/q): sympy computes the power |p/q| (its integer part, and q-th roots of what is left)
    e = ests[1]
    k = math.inf if e is None else abs(ops.float_of(e))
    scale = max(1.0, k)
    n, d = (na * scale, da * scale) if e is None or e[0] >= 0 else (da * scale, na * scale)
    return (n + nb + db, d) if db > 0 else (n, d)  # a q-th root adds the exponent's own digits


# ---------------------------------------------------------------- the parser


_BINOPS: dict[type, Op] = {
    ast.Add: ops.add, ast.Sub: ops.sub, ast.Mult: ops.mul, ast.Div: ops.div,
    ast.Pow: ops.pow, ast.MatMult: ops.matmul,
}
_REFUSED_BINOPS = {
    ast.FloorDiv: "//", ast.Mod: "%", ast.LShift: "<<", ast.RShift: ">>",
    ast.BitOr: "|", ast.BitXor: "^", ast.BitAnd: "&",
}
_REFUSED_NODES: dict[type, str] = {
    ast.Attribute: "attribute access", ast.Subscript: "subscript", ast.Slice: "slice",
    ast.Lambda: "lambda", ast.IfExp: "conditional expression", ast.Compare: "comparison",
    ast.BoolOp: "boolean operator", ast.NamedExpr: "assignment expression",
    ast.ListComp: "comprehension", ast.SetComp: "comprehension", ast.DictComp: "comprehension",
    ast.GeneratorExp: "generator expression", ast.Starred: "starred expression",
    ast.JoinedStr: "f-string", ast.FormattedValue: "f-string", ast.List: "list", ast.Tuple: "tuple",
    ast.Set: "set", ast.Dict: "dict", ast.Await: "await", ast.Yield: "yield", ast.YieldFrom: "yield",
}
_COMPARE: dict[type, Op] = {
    ast.Lt: ops.less, ast.LtE: ops.less_equal, ast.Gt: ops.greater, ast.GtE: ops.greater_equal,
    ast.Eq: ops.eq, ast.NotEq: ops.not_equal,
}
_COMPARE_REFUSED = {ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in"}
_TOKEN = re.compile(r"\w+|\*\*|//|<<|>>|[<>=!]=|:=|\S")


class _Parser:
    def __init__(self, text: str, offset: int, names: set[str] | None, limits: Limits):
        self.text, self.names, self.limits = text, names, limits
        self.source = text[offset:]  # what ast.parse saw (leading whitespace stripped)
        self.offset = offset
        self.line_starts = [0] + [m.end() for m in re.finditer(r"\r\n|\r|\n", self.source)]
        self.nodes = 0
        self.est: dict[int, Est] = {}  # id(IR node) -> constant-size estimate (constants only)
        self.exact: dict[int, Exact] = {}  # id(IR node) -> exact size (constants only)

    # ------------------------------------------------------------ errors and positions

    def column(self, lineno: int, byte_col: int) -> int:
        """1-based character position in the whole text of ast's (line, UTF-8 byte column)."""
        lineno = min(max(lineno, 1), len(self.line_starts))
        start = self.line_starts[lineno - 1]
        line = self.source[start:].split("\n", 1)[0]
        chars = len(line.encode("utf-8")[:max(byte_col, 0)].decode("utf-8", errors="ignore"))
        return self.offset + start + chars + 1

    def fail(self, node: ast.AST | None, reason: str, token: str | None = None) -> ParseError:
        column = None
        lineno, col = getattr(node, "lineno", None), getattr(node, "col_offset", None)  # keywords have them too
        if lineno is not None and col is not None:
            column = self.column(lineno, col)
        return ParseError(self.text, reason, column, token)

    def segment(self, node: ast.AST) -> str:
        seg = ast.get_source_segment(self.source, node) or type(node).__name__
        return seg if len(seg) <= 40 else seg[:37] + "..."

    def operator_column(self, left: ast.expr, right: ast.expr, symbol: str) -> int | None:
        """Column of the operator ``symbol`` between two operand nodes."""
        start = self.column(left.end_lineno or left.lineno, left.end_col_offset or 0) - 1  # 0-based, in text
        end = self.column(right.lineno, right.col_offset) - 1
        found = self.text.find(symbol, start, end)
        return found + 1 if found >= 0 else None

    def limit(self, node: ast.AST | None, name: str, value: object, what: str) -> ParseError:
        maximum = getattr(self.limits, name)
        reason = str(LimitExceeded(name, value, maximum, what))
        return self.fail(node, reason, self.segment(node) if node else None)

    # ------------------------------------------------------------ building

    def build(self, node: ast.AST, depth: int) -> Expr:
        if depth > self.limits.max_depth:
            raise self.limit(node, "max_depth", depth, "nesting depth")
        if depth > _STACK_DEPTH:  # whatever sys.getrecursionlimit() is (tinygrad raises it to 10 000)
            raise _too_deep(self.text, self.limits)
        method = _VISIT.get(type(node))
        if method is None:
            raise self.refuse(node)
        return method(self, node, depth)

    def count(self, node: ast.AST) -> None:
        """Count one more IR node against ``max_nodes``."""
        self.nodes += 1
        if self.nodes > self.limits.max_nodes:
            raise self.limit(node, "max_nodes", self.nodes, "number of nodes")

    def refuse(self, node: ast.AST) -> ParseError:
        what = _REFUSED_NODES.get(type(node), type(node).__name__)
        token = self.segment(node)
        where = " outside where()'s condition" if isinstance(node, ast.Compare) else ""
        return self.fail(node, f"{what} {token!r} is not allowed{where}", token)

    def const(self, node: ast.Constant, depth: int) -> Expr:
        value = node.value
        if isinstance(value, bool) or value is None or not isinstance(value, (int, float)):
            kind = {str: "string", bytes: "bytes", complex: "complex number", bool: "boolean"}.get(
                type(value), repr(value))
            token = self.segment(node)
            raise self.fail(node, f"{kind} literal {token!r} is not allowed", token)
        if isinstance(value, int):
            digits = _int_digits(value)
            if digits > self.limits.max_int_digits:
                raise self.limit(node, "max_int_digits", digits, "digits of an integer literal")
        self.count(node)
        out = Const(value)
        self.track(node, out, ops.est_of(value), _exact_of(value))
        return out

    def name(self, node: ast.Name, depth: int) -> Expr:
        name = node.id
        self.count(node)
        if name in ops.CONSTANTS:
            out = Const(ops.CONSTANTS[name], name=name)
            self.track(node, out, ops.est_of(ops.CONSTANTS[name]), _PI_E_SIZE)
            return out
        if _is_function(name):
            raise self.fail(node, f"function {name!r} used without calling it", name)
        if self.names is not None and name not in self.names:
            raise self.fail(node, missing_input(name, self.names), name)
        if self.names is None and (name.startswith("__") or keyword.iskeyword(name)):
            raise self.fail(node, f"name {name!r} is not allowed", name)
        return Var(name)

    def unary(self, node: ast.UnaryOp, depth: int) -> Expr:
        if isinstance(node.op, ast.UAdd):
            return self.build(node.operand, depth + 1)  # unary plus adds no node
        if not isinstance(node.op, ast.USub):
            symbol = "not" if isinstance(node.op, ast.Not) else "~"
            where = " outside where()'s condition" if symbol == "~" else ""
            raise self.fail(node, f"operator {symbol!r} is not allowed{where}", symbol)
        arg = self.build(node.operand, depth + 1)
        return self.call(node, ops.neg, [arg], {})

    def binop(self, node: ast.BinOp, depth: int) -> Expr:
        op = _BINOPS.get(type(node.op))
        if op is None:
            symbol = _REFUSED_BINOPS.get(type(node.op), type(node.op).__name__)
            column = self.operator_column(node.left, node.right, symbol) or self.fail(node, "").column
            where = " outside where()'s condition" if symbol in "&|" else ""
            raise ParseError(self.text, f"operator {symbol!r} is not allowed{where}", column, symbol)
        left = self.build(node.left, depth + 1)
        right = self.build(node.right, depth + 1)
        return self.call(node, op, [left, right], {})

    def func(self, node: ast.Call, depth: int) -> Expr:
        if not isinstance(node.func, ast.Name):
            if isinstance(node.func, ast.Attribute):
                raise self.refuse(node.func)
            token = self.segment(node.func)
            raise self.fail(node.func, f"only the table's functions can be called, not {token!r}", token)
        fname = node.func.id
        op = ops.lookup(fname)
        if op is None:
            is_value = fname in ops.CONSTANTS or (self.names is not None and fname in self.names)
            reason = f"{fname!r} is not a function" if is_value else f"unknown function {fname!r}" + _hint(fname)
            raise self.fail(node.func, reason, fname)
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise self.refuse(arg)
        params: dict[str, object] = {}
        for kw in node.keywords:
            if kw.arg is None:
                raise self.fail(kw, f"'**' arguments are not allowed in {fname}()", "**")
            if kw.arg not in op.params:
                reason = (f"{fname}() takes no keyword arguments" if not op.params
                          else f"unknown keyword {kw.arg!r} for {fname}()" + did_you_mean(kw.arg, op.params))
                raise self.fail(kw, reason, kw.arg)
            if sum(k.arg == kw.arg for k in node.keywords) > 1:  # Python refuses it; ast does not
                raise self.fail(kw, f"keyword argument {kw.arg!r} repeated in {fname}()", kw.arg)
            value = self.param(kw.arg, kw.value)
            if value is not None:
                params[kw.arg] = value
        if op.members is not None and not op.leading:
            return self.members(node, op, params, depth)
        lead = node.args[:len(op.leading)]
        for pname, pnode in zip(op.leading, lead):
            params[pname] = self.param(pname, pnode)
        if len(lead) < len(op.leading):
            raise self.fail(node, f"{fname}() needs its {op.leading[len(lead)]!r} argument first", fname)
        rest = node.args[len(lead):]
        if op.members is not None:  # einsum: any number of operands, folded by the op
            return self.operands(node, op, params, rest, depth)
        positional = rest[op.arity:op.arity + len(op.positional)]
        for pname, pnode in zip(op.positional, positional):
            if pname in params:
                raise self.fail(pnode, f"{fname}() got {pname!r} twice", pname)
            params[pname] = self.param(pname, pnode)
        if len(rest) - len(positional) != op.arity:
            s = "" if op.arity == 1 else "s"
            raise self.fail(node, f"{fname}() takes {op.arity} positional argument{s} "
                                  f"({len(rest)} given)", fname)
        missing = [p for p in op.positional if p not in params]
        if missing:
            raise self.fail(node, f"{fname}() needs its {missing[0]!r} argument", fname)
        if op.kind == ops.CONDITION:
            raise self.fail(node, f"{fname}() is a condition, allowed only as where()'s first argument", fname)
        args = [self.condition(a, depth + 1) if i == 0 and op is ops.where else self.build(a, depth + 1)
                for i, a in enumerate(rest[:op.arity])]
        return self.call(node, op, args, params)

    def condition(self, node: ast.AST, depth: int) -> Expr:
        """where()'s first argument: comparisons (chains fold with ``&``), ``&``, ``|`` and ``~`` of
        conditions, and calls of the condition ops; their operands, and any other value (``c``, read
        as ``c != 0``), are ordinary expressions, where comparisons are refused again."""
        if depth > self.limits.max_depth:
            raise self.limit(node, "max_depth", depth, "nesting depth")
        if depth > _STACK_DEPTH:
            raise _too_deep(self.text, self.limits)
        if isinstance(node, ast.Compare):
            for o in node.ops:
                if type(o) not in _COMPARE:
                    symbol = _COMPARE_REFUSED.get(type(o), type(o).__name__)
                    raise self.fail(node, f"operator {symbol!r} is not allowed (only < <= > >= == !=)", symbol)
            sides = [self.build(n, depth + 1) for n in (node.left, *node.comparators)]
            out: Expr | None = None
            for o, a, b in zip(node.ops, sides, sides[1:]):
                part = self.call(node, _COMPARE[type(o)], [a, b], {})
                out = part if out is None else self.call(node, ops.logical_and, [out, part], {})
            assert out is not None
            return out
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.BitAnd, ast.BitOr)):
            op = ops.logical_and if isinstance(node.op, ast.BitAnd) else ops.logical_or
            return self.call(node, op, [self.condition(node.left, depth + 1), self.condition(node.right, depth + 1)], {})
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Invert):
            return self.call(node, ops.logical_not, [self.condition(node.operand, depth + 1)], {})
        if isinstance(node, ast.BoolOp) or (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not)):
            symbol = "not" if isinstance(node, ast.UnaryOp) else "and" if isinstance(node.op, ast.And) else "or"
            hint = {"not": "~", "and": "&", "or": "|"}[symbol]
            raise self.fail(node, f"operator {symbol!r} is not allowed; write {hint!r} between conditions", symbol)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            named = ops.lookup(node.func.id)
            if named is not None and named.kind == ops.CONDITION:
                if node.keywords or len(node.args) != named.arity or any(isinstance(a, ast.Starred) for a in node.args):
                    s = "" if named.arity == 1 else "s"
                    raise self.fail(node, f"{named.name}() takes {named.arity} positional argument{s} and no keywords",
                                    named.name)
                sub = self.build if named in _COMPARE.values() else self.condition
                return self.call(node, named, [sub(a, depth + 1) for a in node.args], {})
        return self.build(node, depth)

    def keyword(self, name: str, node: ast.AST) -> object:
        """A keyword argument's value: ``axis=`` (see :meth:`axis`), ``keepdims=True``/``False``,
        an integer ``ddof=``, and a real literal (maybe negative) for every other parameter."""
        if name == "axis":
            return self.axis(node)
        if name == "keepdims":
            if isinstance(node, ast.Constant) and type(node.value) is bool:
                return node.value or None  # False is the default: not recorded
            token = self.segment(node)
            raise self.fail(node, f"keepdims must be True or False, not {token!r}", token)
        sign, inner = 1, node
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            sign, inner = (-1 if isinstance(node.op, ast.USub) else 1), node.operand
        value: Any = getattr(inner, "value", None)
        ok = isinstance(inner, ast.Constant) and type(value) in ((int,) if name == "ddof" else (int, float))
        if not ok or (name == "ddof" and sign * value < 0) or not math.isfinite(value):
            token = self.segment(node)
            what = "a non-negative integer" if name == "ddof" else "a real number literal"
            raise self.fail(node, f"{name} must be {what}, not {token!r}", token)
        return sign * value if name == "ddof" else float(sign * value)

    # ------------------------------------------------------------ shapes and indexing (issue 15, part B)

    def param(self, name: str, node: ast.AST) -> object:
        """A keyword (or positional) parameter's constant value, read by what the parameter means."""
        if name == "shape":
            return self.int_tuple(node, "shape", allow_one_minus=True)
        if name == "subscripts":
            return self.subscripts(node)
        if name == "axes":
            axes = self.int_tuple(node, "axes", allow_one_minus=False, axis=True)
            if len(set(axes)) != len(axes):
                raise self.fail(node, f"repeated axis in {self.segment(node)!r}", self.segment(node))
            return axes
        return self.keyword(name, node)

    def int_tuple(self, node: ast.AST, what: str, allow_one_minus: bool, axis: bool = False) -> tuple[int, ...]:
        """A tuple of integer constants (or one integer), e.g. a shape ``(2, -1)``."""
        elts = node.elts if isinstance(node, ast.Tuple) else [node]
        if len(elts) > self.limits.max_ndim:
            raise self.limit(node, "max_ndim", len(elts), f"length of {what}")
        out = []
        for e in elts:
            if axis:
                out.append(self.axis_int(e))
                continue
            value = self.signed_int(e, f"{what} must be a tuple of integer constants")
            if value < (-1 if allow_one_minus else 0):
                raise self.fail(e, f"{what} has a negative length {value}", self.segment(e))
            out.append(value)
        if out.count(-1) > 1:
            raise self.fail(node, f"only one -1 is allowed in {what} {self.segment(node)!r}", self.segment(node))
        return tuple(out)

    def signed_int(self, node: ast.AST, reason: str) -> int:
        sign, inner = 1, node
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            sign, inner = (-1 if isinstance(node.op, ast.USub) else 1), node.operand
        if not (isinstance(inner, ast.Constant) and type(inner.value) is int):
            token = self.segment(node)
            raise self.fail(node, f"{reason}, not {token!r}", token)
        if _int_digits(inner.value) > self.limits.max_int_digits:
            raise self.limit(node, "max_int_digits", _int_digits(inner.value), "digits of an integer literal")
        return sign * inner.value

    def members(self, node: ast.Call, op: Op, params: dict[str, object], depth: int) -> Expr:
        """``concatenate((x, y, z), axis=0)``: one tuple of at least two members, folded by the op."""
        fname = op.name
        if len(node.args) != 1 or not isinstance(node.args[0], ast.Tuple) or len(node.args[0].elts) < 2:
            raise self.fail(node, f"{fname}() takes one tuple of at least two arrays, as {fname}((x, y))", fname)
        members = [self.build(e, depth + 2) for e in node.args[0].elts]
        for _ in members[1:]:
            self.count(node)
        return op.members(members, **params)  # type: ignore[misc]  # the parser calls this only for members ops

    def operands(self, node: ast.Call, op: Op, params: dict[str, object], rest: list, depth: int) -> Expr:
        """``einsum("ij,jk,kl->il", a, b, c)``: as many operands as the subscripts name, folded by the op."""
        lead = node.args[0]
        problem = ops.einsum_problem(str(params["subscripts"]), len(rest))
        if problem is not None:
            column = self.column(lead.lineno, lead.col_offset) + 1 + problem[0]
            raise ParseError(self.text, problem[1], column, str(params["subscripts"])[problem[0]:problem[0] + 1] or None)
        if not rest:
            raise self.fail(node, f"{op.name}() needs at least one operand after its subscripts", op.name)
        args = [self.build(a, depth + 1) for a in rest]
        for _ in args:
            self.count(node)
        return op.members(args, **params)  # type: ignore[misc]  # the parser calls this only for members ops

    def subscript(self, node: ast.Subscript, depth: int) -> Expr:
        """``x[1]``, ``x[1:3]``, ``x[:, 0]``, ``x[::2]``, ``x[..., -1]``: integer constants only."""
        inner = node.slice
        elts = inner.elts if isinstance(inner, ast.Tuple) else [inner]
        if len(elts) > self.limits.max_ndim:
            raise self.limit(node, "max_ndim", len(elts), "items of an index")
        key: list[object] = []
        for e in elts:
            if isinstance(e, ast.Constant) and e.value is Ellipsis:
                if Ellipsis in key:
                    raise self.fail(e, "an index can have only one '...'", "...")
                key.append(Ellipsis)
            elif isinstance(e, ast.Slice):
                bounds = tuple(None if b is None else self.index_int(b) for b in (e.lower, e.upper, e.step))
                if bounds[2] == 0:
                    raise self.fail(e.step, "slice step cannot be zero", "0")
                key.append(bounds)
            else:
                key.append(self.index_int(e))
        value = self.build(node.value, depth + 1)
        return self.call(node, ops.index, [value], {"key": tuple(key)})

    def subscripts(self, node: ast.AST) -> str:
        """einsum's subscript string: the only string literal of the language, checked character by character."""
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            token = self.segment(node)
            raise self.fail(node, f"einsum's first argument must be its subscript string, not {token!r}", token)
        value, raw = node.value, ast.get_source_segment(self.source, node) or ""
        if raw[1:-1] != value or raw[:1] not in "'\"":  # prefixes, escapes, triple quotes: positions would shift
            raise self.fail(node, f"einsum subscripts must be a plain quoted string, not {raw!r}", raw)
        if len(value) > 200:
            raise self.limit(node, "max_length", len(value), "length of einsum subscripts")
        problem = ops.einsum_problem(value)
        if problem is not None:
            i, reason = problem
            column = self.column(node.lineno, node.col_offset) + 1 + i
            raise ParseError(self.text, reason, column, value[i:i + 1] or None)
        return value

    def index_int(self, node: ast.AST) -> int:
        return self.signed_int(node, "an index must be an integer constant, a slice of them or '...'")

    def axis(self, node: ast.AST) -> object:
        """``axis=``: None, an int literal (maybe negative) or a tuple of them, no repeats."""
        if isinstance(node, ast.Constant) and node.value is None:
            return None
        if isinstance(node, ast.Tuple):
            axes = tuple(self.axis_int(e) for e in node.elts)
            if len(set(axes)) != len(axes):
                raise self.fail(node, f"repeated axis in {self.segment(node)!r}", self.segment(node))
            return axes
        return self.axis_int(node)

    def axis_int(self, node: ast.AST) -> int:
        sign, inner = 1, node
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            sign, inner = (-1 if isinstance(node.op, ast.USub) else 1), node.operand
        if not (isinstance(inner, ast.Constant) and type(inner.value) is int):
            token = self.segment(node)
            raise self.fail(node, f"axis must be an integer or a tuple of integers, not {token!r}", token)
        value = sign * inner.value
        ndim = self.limits.max_ndim
        if not -ndim <= value < ndim:
            raise self.limit(node, "max_ndim", value, "axis")
        return value

    def call(self, node: ast.AST, op: Op, args: list[Expr], params: dict[str, object]) -> Expr:
        self.count(node)
        out = call(op, tuple(args), tuple(sorted(params.items())))
        if all(id(a) in self.est for a in args):  # a constant subexpression
            ests = [self.est[id(a)] for a in args]
            self.track(node, out, None if None in ests else _estimate(op, ests),  # type: ignore[arg-type]
                       _exact(op, [self.exact.get(id(a)) for a in args], ests))
        return out

    def track(self, node: ast.AST, out: Expr, est: Est, exact: Exact = None) -> None:
        """Remember a constant's estimated size; refuse it when its value has too many digits."""
        if est is not None and est[0] != 0:
            digits = _digits(est[1])
            if digits > self.limits.max_const_digits:
                shown = "inf" if math.isinf(digits) else f"~{digits:.0f}"
                raise self.limit(node, "max_const_digits", shown, "digits of a constant's value")
        exact_digits = _exact_digits(exact)
        if exact_digits > self.limits.max_const_digits:
            raise self.limit(node, "max_const_digits", _shown(exact_digits), _EXACT_WHAT)
        self.est[id(out)] = est
        self.exact[id(out)] = exact


_EXACT_WHAT = "digits of an exact constant's numerator and denominator"


def _exact_digits(exact: Exact) -> float:
    if exact is None:
        return 0.0
    total = exact[0] + exact[1]
    return math.inf if math.isnan(total) or math.isinf(total) else math.floor(total) + 1


def _shown(digits: float) -> str:
    return "inf" if math.isinf(digits) else f"~{digits:.0f}" if digits < 1e15 else f"~{digits:.1e}"


def _digits(mag: float) -> float:
    """Decimal digits of a value with log10|value| = mag: before the point, or after it when |value| < 1."""
    if math.isnan(mag) or math.isinf(mag):
        return math.inf
    return math.floor(mag) + 1 if mag >= 0 else math.ceil(-mag)


_VISIT: dict[type, Callable[[_Parser, Any, int], Expr]] = {
    ast.Constant: _Parser.const, ast.Name: _Parser.name, ast.UnaryOp: _Parser.unary,
    ast.BinOp: _Parser.binop, ast.Call: _Parser.func,
    ast.Subscript: _Parser.subscript,
}


def _int_digits(value: int) -> int:
    value = abs(value)
    if value.bit_length() < 10_000:  # str() is exact and allowed below 4300 digits
        return len(str(value))
    return int(value.bit_length() * math.log10(2)) + 1


def _check_names(text: str, names: Iterable[str]) -> set[str]:
    declared: set[str] = set()
    for name in names:
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise ParseError(text, f"input name {name!r} is not a valid identifier", None, str(name))
        name = unicodedata.normalize("NFKC", name)  # as Python's tokenizer reads identifiers
        if name in ops.CONSTANTS or _is_function(name):
            kind = "constant" if name in ops.CONSTANTS else "function"
            raise ParseError(text, f"input name {name!r} shadows the {kind} {name!r}", None, name)
        declared.add(name)
    return declared


def parse(text: str, names: Iterable[str] | None = None, limits: Limits = DEFAULT) -> Expr:
    """Parse one expression into the IR, or raise :class:`ParseError`.

    ``names`` are the declared input names; any other identifier that is neither
    an op nor a constant is refused.  With ``names=None`` every such identifier
    becomes a :class:`~symgrad.expr.Var`.
    """
    limits = limits or DEFAULT
    if isinstance(text, str) and (names is None or isinstance(names, (list, tuple))):
        try:  # a suite repeats expressions: the (immutable) tree of a text is built once
            return _parse_cached(text, None if names is None else tuple(names), limits)
        except TypeError:  # an unhashable name: refused by the uncached path below
            pass
    return _parse(text, names, limits)


@functools.lru_cache(maxsize=512)
def _parse_cached(text: str, names: tuple | None, limits: Limits) -> Expr:
    return _parse(text, names, limits)


def _parse(text: str, names: Iterable[str] | None, limits: Limits) -> Expr:
    if not isinstance(text, str):
        raise ParseError(repr(text)[:_SHOWN], f"an expression must be a str, not {type(text).__name__}")
    if len(text) > limits.max_length:
        raise ParseError(text, str(LimitExceeded("max_length", len(text), limits.max_length,
                                                 "length of the expression")))
    if isinstance(names, str):
        raise TypeError("names must be an iterable of names, not one str")
    declared = None if names is None else _check_names(text, names)
    if "\x00" in text:
        raise ParseError(text, "NUL character is not allowed", text.index("\x00") + 1, "\\x00")
    bad = next((i for i, c in enumerate(text) if "\ud800" <= c <= "\udfff"), None)
    if bad is not None:
        raise ParseError(text, "lone surrogate character is not allowed", bad + 1, repr(text[bad]))
    _refuse_hidden(text)
    source = text.lstrip(" \t\f\r\n")  # ast.parse refuses leading indentation
    offset = len(text) - len(source)
    if not source.strip():
        raise ParseError(text, "empty expression")
    parser = _Parser(text, offset, declared, limits)
    try:
        with warnings.catch_warnings():  # e.g. "invalid decimal literal" on 1if: not the user's concern
            warnings.simplefilter("ignore")
            tree = ast.parse(source, mode="eval")
    except SyntaxError as err:
        raise _syntax_error(parser, err) from None
    except (RecursionError, MemoryError):  # Python's parser gave up on the nesting
        raise _too_deep(text, limits) from None
    except ValueError as err:  # e.g. int literals over Python's 4300 digits in some versions
        raise ParseError(text, f"cannot read the expression: {err}") from None
    try:
        return parser.build(tree.body, 1)
    except RecursionError:  # only when a user raised max_depth past Python's own stack
        raise _too_deep(text, limits) from None


def _refuse_hidden(text: str) -> None:
    """Refuse what could make the printed expression differ from the parsed one (Trojan Source):
    ``#`` comments (the parser would ignore what follows), control characters other than blanks
    and newlines, bidi controls and other invisible format characters."""
    for i, c in enumerate(text):
        if c == "#":
            raise ParseError(text, "comments ('#') are not allowed in an expression", i + 1, "#")
        if c in " \t\n\r\f" or (c.isascii() and c.isprintable()):
            continue
        if c.isprintable():  # Python reads 'ｘ' as 'x' (NFKC): two spellings of one name  # noqa: RUF003
            raise ParseError(text, f"non-ASCII character {c!r} (U+{ord(c):04X}) is not allowed: names, "
                                   f"numbers and operators are ASCII", i + 1, c)
        kind = "bidi control" if unicodedata.bidirectional(c) in ("LRE", "RLE", "LRO", "RLO", "PDF", "LRI",
                                                                    "RLI", "FSI", "PDI") else (
            "control" if unicodedata.category(c) == "Cc" else "invisible or non-printing")
        raise ParseError(text, f"{kind} character U+{ord(c):04X} is not allowed in an expression", i + 1,
                         f"U+{ord(c):04X}")


# Deeper than this, the IR's recursive walkers (here, in sympy, in the engines) would run out of
# Python's default stack: refused at one fixed depth, so a verdict never depends on the recursion limit.
_STACK_DEPTH = 250


def _too_deep(text: str, limits: Limits) -> ParseError:
    """Python's parser (or stack) gave up: that takes 200 nested parentheses or far more operators."""
    if limits.max_depth < 200:
        return ParseError(text, f"nesting depth exceeds the limit max_depth={limits.max_depth}")
    return ParseError(text, "nesting too deep for Python's parser")


def _syntax_error(parser: _Parser, err: SyntaxError) -> ParseError:
    text, msg = parser.text, err.msg or "invalid syntax"
    if "integer string conversion" in msg:  # Python's own cap on int literal digits (4300)
        cap = sys.get_int_max_str_digits() or 4300
        run = re.search(r"\d{%d,}" % (min(parser.limits.max_int_digits, cap) + 1), text)  # noqa: UP031
        digits = len(run.group(0)) if run else "too many"
        if parser.limits.max_int_digits < cap:
            reason = str(LimitExceeded("max_int_digits", digits, parser.limits.max_int_digits,
                                       "digits of an integer literal"))
        else:
            reason = f"digits of an integer literal: {digits} exceeds Python's limit of {cap}"
        return ParseError(text, reason, run.start() + 1 if run else None, run.group(0)[:40] if run else None)
    if "nested parentheses" in msg:
        return _too_deep(text, parser.limits)
    column = token = None
    if err.lineno is not None and err.offset is not None:
        if err.offset > 0:  # SyntaxError.offset counts characters from 1 on its line
            lineno = min(max(err.lineno, 1), len(parser.line_starts))
            column = min(parser.offset + parser.line_starts[lineno - 1] + err.offset, len(text) + 1)
            match = _TOKEN.match(text, column - 1)
            token = match.group(0) if match else None
        else:  # 0: the text ended too early
            column, msg = len(text.rstrip()) + 1, f"{msg} (unexpected end of expression)"
    return ParseError(text, f"syntax error: {msg}", column, token)


# ---------------------------------------------------------------- IR built in Python


def check_ir(expr: Expr, names: Iterable[str] | None = None, limits: Limits = DEFAULT) -> str:
    """Apply to an IR built in Python (a traced function, the fuzzer's trees) what :func:`parse`
    applies to text; return the expression's source text (:func:`~symgrad.ir.expr.to_source`).

    The same limits (tree size and depth counted as the printed text would be, integer
    literal digits, the estimated size of every constant subexpression, axes, and the text's
    length), the same rules on names (declared, not shadowing an op or a constant), public
    ops with their arity and keywords.  Raises :class:`LimitExceeded` or :class:`ParseError`.
    Nothing is printed before the tree's size is known to be within the limits: a function
    that reuses one node ``2**100`` times is refused, not printed.
    """
    limits = limits or DEFAULT
    declared = None if names is None else _check_names("", names)
    size: dict[int, int] = {}
    height: dict[int, int] = {}
    est: dict[int, Est] = {}  # constant subexpressions only
    exact: dict[int, Exact] = {}
    _check_conditions(expr)
    for node in expr.walk():
        kids = node.args if isinstance(node, Call) else ()
        size[id(node)] = 1 + sum(size[id(a)] for a in kids)
        height[id(node)] = 1 + max((height[id(a)] for a in kids), default=0)
        if height[id(node)] > limits.max_depth:
            raise LimitExceeded("max_depth", height[id(node)], limits.max_depth, "nesting depth")
        if size[id(node)] > limits.max_nodes:
            raise LimitExceeded("max_nodes", size[id(node)], limits.max_nodes, "number of nodes")
        if isinstance(node, Var):
            _check_ir_name(node.name, declared)
            continue
        if isinstance(node, Const):
            value = node.value
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ParseError(repr(value), f"the constant {value!r} is not allowed")
            if isinstance(value, int) and _int_digits(value) > limits.max_int_digits:
                raise LimitExceeded("max_int_digits", _int_digits(value), limits.max_int_digits,
                                    "digits of an integer literal")
            est[id(node)] = ops.est_of(value)
            exact[id(node)] = _PI_E_SIZE if node.name else _exact_of(value)
        elif isinstance(node, Call):
            _check_ir_call(node, limits)
            if all(id(a) in est for a in node.args):
                ests = [est[id(a)] for a in node.args]
                est[id(node)] = None if None in ests else _estimate(node.op, ests)  # type: ignore[arg-type]
                exact[id(node)] = _exact(node.op, [exact.get(id(a)) for a in node.args], ests)
                if _exact_digits(exact[id(node)]) > limits.max_const_digits:
                    raise LimitExceeded("max_const_digits", _shown(_exact_digits(exact[id(node)])),
                                        limits.max_const_digits, _EXACT_WHAT)
        e = est.get(id(node))
        if e is not None and e[0] != 0 and _digits(e[1]) > limits.max_const_digits:
            digits = _digits(e[1])
            shown = "inf" if math.isinf(digits) else f"~{digits:.0f}"
            raise LimitExceeded("max_const_digits", shown, limits.max_const_digits, "digits of a constant's value")
    text = to_source(expr)
    if len(text) > limits.max_length:
        raise LimitExceeded("max_length", len(text), limits.max_length, "length of the expression")
    return text


def _is_function(name: str) -> bool:
    """A name of the table's functions; not the conditions (less, eq ...), written as operators: inputs may
    be named so."""
    op = ops.lookup(name)
    return op is not None and op.kind != ops.CONDITION


def _check_conditions(expr: Expr) -> None:
    """Conditions (comparisons, & | ~) only as where()'s first argument, or inside another condition's ``&``."""
    def refuse(node: Call) -> ParseError:
        return ParseError(node.op.name, f"{node.op.name}() is a condition, allowed only as where()'s first argument",
                          None, node.op.name)

    if isinstance(expr, Call) and expr.op.kind == ops.CONDITION:
        raise refuse(expr)
    logical = (ops.logical_and, ops.logical_or, ops.logical_not)
    for node in expr.walk():
        if not isinstance(node, Call):
            continue
        for i, a in enumerate(node.args):
            if isinstance(a, Call) and a.op.kind == ops.CONDITION and not (
                    (node.op is ops.where and i == 0) or node.op in logical):
                raise refuse(a)


def _hint(fname: str) -> str:
    """A did-you-mean over every op name and alias."""
    return did_you_mean(fname, [n for op in ops.public_ops() if op.kind != ops.CONDITION  # written as operators
                                for n in (op.name, *op.aliases)])


def missing_input(name: str, declared: Iterable[str]) -> str:
    """The reason for a name the expression uses but no input provides."""
    return f"no input given for {name!r}" + did_you_mean(name, declared)


def _check_ir_name(name: str, declared: set[str] | None) -> None:
    if (not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name)
            or (declared is None and name.startswith("__"))):
        raise ParseError(str(name), f"name {name!r} is not allowed", None, str(name))
    if name in ops.CONSTANTS or _is_function(name):
        kind = "constant" if name in ops.CONSTANTS else "function"
        raise ParseError(name, f"input name {name!r} shadows the {kind} {name!r}", None, name)
    if declared is not None and name not in declared:
        raise ParseError(name, missing_input(name, declared), None, name)


def _check_ir_call(node: Call, limits: Limits) -> None:
    op, fname = node.op, node.op.name
    if ops.lookup(fname) is not op:
        raise ParseError(fname, f"{fname!r} is not an op of the expression language", None, fname)
    if len(node.args) != op.arity:
        s = "" if op.arity == 1 else "s"
        raise ParseError(fname, f"{fname}() takes {op.arity} positional argument{s} ({len(node.args)} given)",
                         None, fname)
    for key, value in node.params:
        if key not in op.params:
            reason = (f"{fname}() takes no keyword arguments" if not op.params
                      else f"unknown keyword {key!r} for {fname}()" + did_you_mean(key, op.params))
            raise ParseError(fname, reason, None, key)
        if value is None or key not in ("axis", "axes"):  # shape, key: checked by the op's forward
            continue
        if key != "axis":
            ok = value is True if key == "keepdims" else (
                type(value) is int and value >= 0 if key == "ddof" else type(value) in (int, float)
                and math.isfinite(value))
            if not ok:
                raise ParseError(fname, f"bad value {value!r} for {key}=", None, key)
            continue
        axes = value if isinstance(value, tuple) else (value,)
        if not all(type(a) is int for a in axes):
            raise ParseError(fname, f"axis must be an integer or a tuple of integers, not {value!r}", None, key)
        if len(set(axes)) != len(axes):
            raise ParseError(fname, f"repeated axis in {value!r}", None, key)
        for a in axes:
            if not -limits.max_ndim <= a < limits.max_ndim:
                raise LimitExceeded("max_ndim", a, limits.max_ndim, "axis")
