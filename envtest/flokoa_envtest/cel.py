"""CEL for ``x-kubernetes-validations``: cel-python's parser, a closure compiler, kube's libraries.

Expressions are parsed with cel-python (``celpy``'s lark grammar and literal decoding) and
compiled once into a tree of Python closures that follow cel-go's runtime semantics:

- values are plain Python objects: ``None`` (null), ``bool``, ``int`` (int64, overflow is an
  error), :class:`UInt`, ``float`` (double), ``str``, ``bytes``, ``list``, ``dict`` (maps and
  objects alike), ``datetime`` (timestamp), ``timedelta`` (duration), :class:`CelURL`;
- errors are exceptions (:class:`CelError`) with cel-go's texts (``no such key: x``,
  ``no such overload``, ``division by zero``, ``index out of bounds: 3``), absorbed by ``&&``,
  ``||``, ``all()`` and ``exists()`` exactly where cel-go absorbs them;
- equality is heterogeneous (``1 == 1.0``, ``1 == 'a'`` is false), numeric comparisons cross
  types, ``has()`` tests presence, and the macros are ``all``, ``exists``, ``exists_one``,
  ``map`` and ``filter``.

Beyond the standard definitions it provides the Kubernetes CEL libraries CRD rules use: the
URL library (``url()``, ``isURL()``, ``getScheme()`` …), ``lowerAscii``/``upperAscii`` and the
other extended string functions, the list library (``sum``, ``min``, ``max``, ``isSorted``,
``indexOf``), the regex library (``find``, ``findAll``) and ``sets.*``. Regular expressions are
RE2 (``google-re2``, installed with cel-python), like Go's. Not supported: optional types
(``?.``), ``quantity``/``ip``/``cidr``, type values, cost limits.

A compiled :class:`Program` is cached per expression text, so rules compile once per process.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import lark
from celpy.celparser import CELParseError, CELParser
from celpy.evaluation import celbytes, celstr

from flokoa_envtest.cellib import (
    BINARY,
    FUNCTIONS,
    INT_MAX,
    INT_MIN,
    METHODS,
    UINT_MAX,
    CelError,
    CelURL,
    NoOverload,
    UInt,
    compile_regex,
    format_duration,
    format_timestamp,
    index_value,
    logical_not,
    negate,
    no_overload,
    parse_duration,
    parse_timestamp,
    type_name,
)

__all__ = [
    "CelCompileError",
    "CelError",
    "CelURL",
    "Program",
    "UInt",
    "compile_expression",
    "format_duration",
    "format_timestamp",
    "parse_duration",
    "parse_timestamp",
]


@dataclass(frozen=True)
class Program:
    """A compiled CEL expression."""

    source: str
    """The expression text."""
    uses_old_self: bool
    """True when the expression references ``oldSelf`` (a transition rule)."""
    _fn: Fn

    def evaluate(self, activation: Mapping[str, Any]) -> Any:
        """Evaluate with the given variables; raise :class:`CelError` on a runtime error."""
        env = dict(activation)
        try:
            return self._fn(env)
        except CelError:
            raise
        except RecursionError:
            raise CelError("expression too deeply nested") from None
        except KeyError as err:
            raise CelError(f"no such attribute: {err.args[0]}") from None


@functools.lru_cache(maxsize=1)
def _parser() -> CELParser:
    return CELParser()


@functools.lru_cache(maxsize=4096)
def compile_expression(
    source: str, variables: frozenset[str] = frozenset({"self", "oldSelf"})
) -> Program:
    """Parse and compile ``source`` (cached); raise :class:`CelCompileError` when invalid."""
    try:
        tree = _parser().parse(source)
    except CELParseError as err:
        where = f"<input>:{err.line}:{err.column}"
        raise CelCompileError(f"ERROR: {where}: Syntax error: unexpected input") from None
    except lark.exceptions.LarkError as err:
        raise CelCompileError(f"ERROR: <input>: Syntax error: {err}") from None
    compiler = _Compiler(variables)
    node = compiler.compile(tree, variables)
    return Program(source, "oldSelf" in compiler.used, _as_fn(node))


# --- compiler -------------------------------------------------------------------------------


class CelCompileError(ValueError):
    """An expression that does not parse or uses an undeclared name or function."""


Env = dict[str, Any]
Fn = Callable[[Env], Any]


class _Const:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


Node = Fn | _Const


def _as_fn(node: Node) -> Fn:
    if isinstance(node, _Const):
        value = node.value
        return lambda env: value
    return node


_MACROS: Final = frozenset({"all", "exists", "exists_one", "map", "filter"})

_PASSTHROUGH: Final = frozenset(
    {"conditionalor", "conditionaland", "relation", "addition", "multiplication", "member"}
)


class _Compiler:
    def __init__(self, variables: frozenset[str]) -> None:
        self.variables = variables
        self.used: set[str] = set()
        self.bound: list[str] = []

    def compile(self, tree: lark.Tree[Any], scope: frozenset[str]) -> Node:
        data = tree.data
        children = tree.children
        if data == "expr":
            if len(children) == 1:
                return self.compile(children[0], scope)
            return self._ternary(
                self.compile(children[0], scope),
                self.compile(children[1], scope),
                self.compile(children[2], scope),
            )
        if data in _PASSTHROUGH and len(children) == 1:
            return self.compile(children[0], scope)
        if data == "conditionalor":
            return self._logical(
                self.compile(children[0], scope),
                self.compile(children[1], scope),
                absorbing=True,
            )
        if data == "conditionaland":
            return self._logical(
                self.compile(children[0], scope),
                self.compile(children[1], scope),
                absorbing=False,
            )
        if data in ("relation", "addition", "multiplication"):
            op_tree = children[0]
            left = self.compile(op_tree.children[0], scope)
            right = self.compile(children[1], scope)
            return self._binary(op_tree.data, left, right)
        if data == "unary":
            if len(children) == 1:
                return self.compile(children[0], scope)
            operand = self.compile(children[1], scope)
            if children[0].data == "unary_not":
                return self._fold(logical_not, operand)
            return self._fold(negate, operand)
        if data == "member_dot":
            target = self.compile(children[0], scope)
            name = str(children[1])
            return self._select(target, name)
        if data == "member_dot_arg":
            return self._method(children, scope)
        if data == "member_index":
            return self._index(self.compile(children[0], scope), self.compile(children[1], scope))
        if data == "member_object":
            raise CelCompileError("message construction is not supported")
        if data == "primary":
            return self.compile(children[0], scope)
        if data in ("ident", "dot_ident"):
            return self._ident(str(children[0]), scope)
        if data in ("ident_arg", "dot_ident_arg"):
            name = str(children[0])
            args = children[1].children if len(children) > 1 else []
            return self._call(name, args, scope)
        if data == "paren_expr":
            return self.compile(children[0], scope)
        if data == "list_lit":
            items = [self.compile(c, scope) for c in children[0].children] if children else []
            return self._list(items)
        if data == "map_lit":
            inits = [self.compile(c, scope) for c in children[0].children] if children else []
            return self._map(inits)
        if data == "literal":
            token = children[0]
            if not isinstance(token, lark.Token):
                raise CelCompileError("malformed literal")
            return _Const(_literal(token))
        raise CelCompileError(f"unsupported syntax: {data}")

    # -- names --

    def _ident(self, name: str, scope: frozenset[str]) -> Node:
        if name not in scope:
            raise CelCompileError(f"undeclared reference to '{name}' (in container '')")
        if name not in self.bound:
            self.used.add(name)

        def ident(env: Env) -> Any:
            return env[name]

        return ident

    # -- operators --

    def _fold(self, op: Callable[..., Any], *nodes: Node) -> Node:
        if all(isinstance(n, _Const) for n in nodes):
            try:
                return _Const(op(*(n.value for n in nodes if isinstance(n, _Const))))
            except CelError:
                pass
        fns = [_as_fn(n) for n in nodes]
        if len(fns) == 1:
            (a,) = fns
            return lambda env: op(a(env))
        a, b = fns
        return lambda env: op(a(env), b(env))

    def _binary(self, op_name: str, left: Node, right: Node) -> Node:
        op = BINARY[op_name]
        return self._fold(op, left, right)

    def _ternary(self, cond: Node, then: Node, other: Node) -> Node:
        c, t, o = _as_fn(cond), _as_fn(then), _as_fn(other)

        def ternary(env: Env) -> Any:
            value = c(env)
            if value is True:
                return t(env)
            if value is False:
                return o(env)
            no_overload()

        return ternary

    def _logical(self, left: Node, right: Node, *, absorbing: bool) -> Node:
        """``||`` (``absorbing=True``) or ``&&`` (``absorbing=False``), commutative over errors.

        Either side equal to ``absorbing`` decides the result even when the other side is an
        error; otherwise the left error wins, and both sides must be the other boolean.
        """
        lf, rf = _as_fn(left), _as_fn(right)
        other = not absorbing

        def logical(env: Env) -> Any:
            try:
                lv = lf(env)
            except CelError as err:
                lerr: CelError | None = err
                lv = None
            else:
                if lv is absorbing:
                    return absorbing
                lerr = None
            rv = rf(env)
            if rv is absorbing:
                return absorbing
            if lerr is not None:
                raise lerr
            if lv is other and rv is other:
                return other
            no_overload()

        return logical

    def _select(self, target: Node, name: str) -> Node:
        tf = _as_fn(target)

        def select(env: Env) -> Any:
            obj = tf(env)
            if type(obj) is dict:
                try:
                    return obj[name]
                except KeyError:
                    raise CelError(f"no such key: {name}") from None
            no_overload()

        return select

    def _index(self, target: Node, index: Node) -> Node:
        return self._fold(index_value, target, index)

    def _list(self, items: list[Node]) -> Node:
        if all(isinstance(i, _Const) for i in items):
            return _Const([i.value for i in items if isinstance(i, _Const)])
        fns = [_as_fn(i) for i in items]
        return lambda env: [f(env) for f in fns]

    def _map(self, inits: list[Node]) -> Node:
        fns = [_as_fn(i) for i in inits]
        pairs = list(zip(fns[0::2], fns[1::2], strict=True))

        def make_map(env: Env) -> Any:
            result: dict[Any, Any] = {}
            for kf, vf in pairs:
                key = kf(env)
                if type(key) not in (str, int, UInt, bool):
                    raise CelError(f"unsupported key type: {type_name(key)}")
                if key in result:
                    raise CelError(f"Failed with repeated key: {key}")
                result[key] = vf(env)
            return result

        return make_map

    # -- calls --

    def _call(self, name: str, args: list[lark.Tree[Any]], scope: frozenset[str]) -> Node:
        if name == "has":
            return self._has(args, scope)
        function = FUNCTIONS.get(name)
        if function is None:
            raise CelCompileError(f"undeclared reference to '{name}' (in container '')")
        nodes = [self.compile(a, scope) for a in args]
        if name == "matches" and len(nodes) == 2 and isinstance(nodes[1], _Const):
            _compile_regex_checked(nodes[1].value)
        return self._apply(function, nodes, fold=True)

    def _has(self, args: list[lark.Tree[Any]], scope: frozenset[str]) -> Node:
        if len(args) != 1:
            raise CelCompileError("invalid argument to has() macro")
        inner = _unwrap(args[0])
        if inner.data != "member_dot":
            raise CelCompileError("invalid argument to has() macro")
        target = _as_fn(self.compile(inner.children[0], scope))
        name = str(inner.children[1])

        def has(env: Env) -> Any:
            obj = target(env)
            if type(obj) is dict:
                return name in obj
            no_overload()

        return has

    def _method(self, children: list[Any], scope: frozenset[str]) -> Node:
        target_tree = children[0]
        name = str(children[1])
        args: list[lark.Tree[Any]] = children[2].children if len(children) > 2 else []
        if name in _MACROS:
            var = _macro_var(args)
            if var is not None:
                return self._macro(name, self.compile(target_tree, scope), var, args[1:], scope)
        namespace = _namespace_name(target_tree)
        if namespace is not None and namespace not in scope:
            function = FUNCTIONS.get(f"{namespace}.{name}")
            if function is None:
                raise CelCompileError(f"undeclared reference to '{namespace}.{name}'")
            return self._apply(function, [self.compile(a, scope) for a in args], fold=True)
        method = METHODS.get(name)
        if method is None:
            raise CelCompileError(f"undeclared reference to '{name}' (in container '')")
        nodes = [self.compile(target_tree, scope)] + [self.compile(a, scope) for a in args]
        if name in ("matches", "find", "findAll") and len(nodes) >= 2:
            pattern = nodes[1]
            if isinstance(pattern, _Const):
                _compile_regex_checked(pattern.value)
        return self._apply(method, nodes, fold=True)

    def _apply(self, function: Callable[..., Any], nodes: list[Node], *, fold: bool) -> Node:
        if fold and all(isinstance(n, _Const) for n in nodes):
            try:
                return _Const(function(*(n.value for n in nodes if isinstance(n, _Const))))
            except (CelError, TypeError):
                pass
        fns = [_as_fn(n) for n in nodes]

        def call(env: Env) -> Any:
            try:
                return function(*[f(env) for f in fns])
            except TypeError:
                no_overload()

        if len(fns) == 1:
            (a,) = fns

            def call1(env: Env) -> Any:
                try:
                    return function(a(env))
                except TypeError:
                    no_overload()

            return call1
        if len(fns) == 2:
            a, b = fns

            def call2(env: Env) -> Any:
                try:
                    return function(a(env), b(env))
                except TypeError:
                    no_overload()

            return call2
        return call

    def _macro(
        self,
        name: str,
        target: Node,
        var: str,
        args: list[lark.Tree[Any]],
        scope: frozenset[str],
    ) -> Node:
        inner = scope | {var}
        rng = _as_fn(target)
        self.bound.append(var)
        try:
            bodies = [_as_fn(self.compile(a, inner)) for a in args]
        finally:
            self.bound.pop()
        if name == "map":
            if len(bodies) not in (1, 2):
                raise CelCompileError("map() takes two or three arguments")
        elif len(bodies) != 1:
            raise CelCompileError(f"{name}() takes two arguments")
        body = bodies[0]

        def items(env: Env) -> Iterable[Any]:
            r = rng(env)
            t = type(r)
            if t is list:
                return r  # type: ignore[no-any-return]
            if t is dict:
                return list(r)
            no_overload()

        def run(env: Env, loop: Callable[[Iterable[Any]], Any]) -> Any:
            missing = object()
            saved = env.get(var, missing)
            try:
                return loop(items(env))
            finally:
                if saved is missing:
                    env.pop(var, None)
                else:
                    env[var] = saved

        if name in ("all", "exists"):
            # all() stops at the first false, exists() at the first true; an error or a
            # non-boolean counts only when nothing decides the result.
            absorbing = name == "exists"
            other = not absorbing

            def quantifier_macro(env: Env) -> Any:
                def loop(values: Iterable[Any]) -> Any:
                    error: CelError | None = None
                    for v in values:
                        env[var] = v
                        try:
                            result = body(env)
                        except CelError as err:
                            error = error or err
                            continue
                        if result is absorbing:
                            return absorbing
                        if result is not other:
                            error = error or NoOverload("no such overload")
                    if error is not None:
                        raise error
                    return other

                return run(env, loop)

            return quantifier_macro

        def kept(env: Env, values: Iterable[Any], predicate: Fn) -> Iterator[Any]:
            """Bind ``var`` to each value and yield, while bound, those ``predicate`` accepts
            (a non-boolean result is an error)."""
            for v in values:
                env[var] = v
                keep = predicate(env)
                if keep is True:
                    yield v
                elif keep is not False:
                    no_overload()

        if name == "exists_one":

            def exists_one_macro(env: Env) -> Any:
                return run(env, lambda values: sum(1 for _ in kept(env, values, body)) == 1)

            return exists_one_macro
        if name == "filter":

            def filter_macro(env: Env) -> Any:
                return run(env, lambda values: list(kept(env, values, body)))

            return filter_macro
        if len(bodies) == 1:

            def map_macro(env: Env) -> Any:
                def loop(values: Iterable[Any]) -> Any:
                    out = []
                    for v in values:
                        env[var] = v
                        out.append(body(env))
                    return out

                return run(env, loop)

            return map_macro
        predicate, transform = bodies

        def map_filter_macro(env: Env) -> Any:
            return run(env, lambda values: [transform(env) for _ in kept(env, values, predicate)])

        return map_filter_macro


def _unwrap(tree: lark.Tree[Any]) -> lark.Tree[Any]:
    """Descend through single-child wrapper nodes to the meaningful one."""
    while (
        isinstance(tree, lark.Tree)
        and len(tree.children) == 1
        and isinstance(tree.children[0], lark.Tree)
        and tree.data in (_PASSTHROUGH | {"expr", "unary", "primary", "paren_expr"})
    ):
        tree = tree.children[0]
    return tree


def _macro_var(args: list[lark.Tree[Any]]) -> str | None:
    if len(args) < 2:
        return None
    first = _unwrap(args[0])
    if first.data == "ident":
        return str(first.children[0])
    return None


def _namespace_name(tree: lark.Tree[Any]) -> str | None:
    inner = _unwrap(tree)
    if inner.data == "ident":
        return str(inner.children[0])
    return None


def _literal(token: lark.Token) -> Any:
    kind = token.type
    text = str(token.value)
    if kind == "INT_LIT":
        value = _parse_int_literal(text)
        if not INT_MIN <= value <= INT_MAX:
            raise CelCompileError(f"invalid int literal: {text}")
        return value
    if kind == "UINT_LIT":
        value = _parse_int_literal(text[:-1])
        if not 0 <= value <= UINT_MAX:
            raise CelCompileError(f"invalid uint literal: {text}")
        return UInt(value)
    if kind == "FLOAT_LIT":
        return float(text)
    if kind in ("STRING_LIT", "MLSTRING_LIT"):
        return str(celstr(token))
    if kind == "BYTES_LIT":
        return bytes(celbytes(token))
    if kind == "BOOL_LIT":
        return text == "true"
    if kind == "NULL_LIT":
        return None
    raise CelCompileError(f"unsupported literal {text}")


def _parse_int_literal(text: str) -> int:
    sign = 1
    if text.startswith("-"):
        sign, text = -1, text[1:]
    if text[:2].lower() == "0x":
        return sign * int(text[2:], 16)
    return sign * int(text, 10)


def _compile_regex_checked(pattern: Any) -> None:
    if type(pattern) is str:
        try:
            compile_regex(pattern)
        except CelError as err:
            raise CelCompileError(str(err)) from None
