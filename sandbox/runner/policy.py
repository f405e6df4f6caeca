"""The `restricted` engine: RestrictedPython compilation plus the guards its code calls.

Compiled code reaches attributes, items, iteration, imports and printing only through
the guard functions installed here. The policy: no name or attribute starting with `_`,
no frame/code/generator internals, no `format`/`format_map` (they reach attributes from a
string), no attribute whose value is a frame, code object, traceback, real module or a
module's namespace, writes only to containers and to objects the code itself created,
and imports only from an allow-list, each handed over as a *view*: a fresh module object
holding only the names `allowlist` vetted (that module also records the review).
"""

from __future__ import annotations

import ast
import builtins
import collections
import copy
import operator
import re
import sys
from types import CodeType, FrameType, FunctionType, ModuleType, TracebackType
from typing import Any, TextIO

from RestrictedPython import compile_restricted_exec, safe_builtins
from RestrictedPython.Guards import guarded_iter_unpack_sequence, guarded_unpack_sequence
from RestrictedPython.transformer import INSPECT_ATTRIBUTES

from . import requests_shim
from .allowlist import ALLOWED_MODULES, EXTRA_BUILTINS, UNAVAILABLE
from .engines import syntax_rejection
from .errors import CellRejected

SANDBOX_MODULE = "__sandbox__"
"""`__name__` of the code's globals, hence `__module__` of the classes it defines."""

_ALLOWED_TOP = ", ".join(sorted({name.split(".")[0] for name in ALLOWED_MODULES}))
_FORMATTING_ATTRIBUTES = frozenset({"format", "format_map"})
_HIDDEN_VALUES = (FrameType, CodeType, TracebackType)
# concrete classes only: ABCs would accept whatever the code `register`s with them
_MUTABLE_CONTAINERS = (
    dict, list, set, bytearray, collections.deque, collections.UserDict, collections.UserList,
    requests_shim.CaseInsensitiveDict,
)  # fmt: skip
_INPLACE = {
    "+=": operator.iadd, "-=": operator.isub, "*=": operator.imul, "/=": operator.itruediv,
    "//=": operator.ifloordiv, "%=": operator.imod, "**=": operator.ipow, "<<=": operator.ilshift,
    ">>=": operator.irshift, "&=": operator.iand, "^=": operator.ixor, "|=": operator.ior, "@=": operator.imatmul,
}  # fmt: skip
_MISSING = object()

_RP_LINE = re.compile(r"^Line (?P<line>\d+|None): (?P<message>.*)$")
_RP_UNDERSCORE = re.compile(r'^"(?P<name>[^"]+)" is an invalid (?P<kind>attribute|variable) name')
_RP_INSPECT = re.compile(r'^"(?P<name>[^"]+)" is a restricted name')


def check_attribute(name: Any) -> None:
    """Raise unless sandboxed code may read or write an attribute called `name`."""
    if not isinstance(name, str):
        raise TypeError(f"attribute name must be a string, not {type(name).__name__}")
    if name.startswith("_") or name in INSPECT_ATTRIBUTES:
        raise AttributeError(f"access to {name!r} is not allowed")
    if name in _FORMATTING_ATTRIBUTES:
        raise AttributeError(f"access to {name!r} is not allowed in the restricted sandbox; use an f-string or %")


def _module_view(name: str, module: ModuleType, vetted: tuple[str, ...], submodules: dict[str, ModuleType]) -> ModuleType:
    # A name no real module has: `from json import decoder` must not fall back to sys.modules.
    view = ModuleType(f"{name} (sandbox view)")
    for attr in vetted:
        value = getattr(module, attr, _MISSING)  # a name this Python version lacks is left out
        if value is not _MISSING:
            if attr.startswith("_") or isinstance(value, ModuleType):
                raise ValueError(f"the allow-list names {name}.{attr}, which is private or a module")
            setattr(view, attr, value)
    for attr, sub in submodules.items():
        setattr(view, attr, sub)

    def missing(attr: str) -> Any:
        raise AttributeError(f"module {name!r} has no attribute {attr!r} in the restricted sandbox")

    view.__getattr__ = missing  # type: ignore[attr-defined]
    return view


def _build_views() -> dict[str, ModuleType]:
    views: dict[str, ModuleType] = {}
    for name in sorted(ALLOWED_MODULES, key=lambda n: -n.count(".")):
        children = {n.rsplit(".", 1)[1]: v for n, v in views.items() if n.rpartition(".")[0] == name}
        module, vetted = ALLOWED_MODULES[name]
        views[name] = _module_view(name, module, vetted, children)
    return views


def _pure_path(node: ast.expr) -> bool:
    """A name or constant, or lookups, tuples and arithmetic of pure paths."""
    if isinstance(node, (ast.Name, ast.Constant)):
        return True
    if isinstance(node, ast.Attribute):
        return _pure_path(node.value)
    if isinstance(node, ast.Subscript):
        return _pure_path(node.value) and _pure_path(node.slice)
    if isinstance(node, ast.BinOp):
        return _pure_path(node.left) and _pure_path(node.right)
    if isinstance(node, ast.UnaryOp):
        return _pure_path(node.operand)
    if isinstance(node, ast.Tuple):
        return all(_pure_path(element) for element in node.elts)
    return False


class _Relaxations(ast.NodeTransformer):
    """Rewrite two common forms RestrictedPython refuses into equivalents it accepts.

    `x: T = v` loses its annotation, and `d[k] += v` / `o.a += v` become `d[k] = d[k] + v`
    when the target is a pure path (names, constants, lookups and arithmetic of them, as in
    `self.counts[key] += 1`), which evaluates the same twice.
    """

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.stmt:
        if node.value is None:
            return ast.copy_location(ast.Pass(), node)
        return ast.copy_location(ast.Assign(targets=[node.target], value=node.value), node)

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.stmt:
        target = node.target
        if not isinstance(target, (ast.Subscript, ast.Attribute)) or not _pure_path(target):
            return node
        current = copy.deepcopy(target)
        current.ctx = ast.Load()
        value = ast.copy_location(ast.BinOp(left=current, op=node.op, right=node.value), node)
        return ast.copy_location(ast.Assign(targets=[target], value=value), node)

    @classmethod
    def apply(cls, tree: ast.Module) -> ast.Module:
        if any(isinstance(node, (ast.AnnAssign, ast.AugAssign)) for node in ast.walk(tree)):
            return cls().visit(tree)
        return tree


def _rejection(error: str, filename: str) -> CellRejected:
    match = _RP_LINE.match(error)
    lineno = int(match["line"]) if match and match["line"] != "None" else None
    message = match["message"] if match else error
    if found := _RP_UNDERSCORE.match(message):
        if found["kind"] == "attribute":
            return CellRejected("AttributeError", f"access to {found['name']!r} is not allowed", filename, lineno)
        return CellRejected("NameError", f"the name {found['name']!r} is not allowed (names starting with '_' are reserved)", filename, lineno)
    if found := _RP_INSPECT.match(message):
        return CellRejected("AttributeError", f"access to {found['name']!r} is not allowed", filename, lineno)
    return CellRejected("SyntaxError", f"{message.rstrip('.')} in the restricted sandbox", filename, lineno)


class _Guards:
    """The guard functions of one execution; they know which objects the code created."""

    def __init__(self, views: dict[str, ModuleType], output: TextIO) -> None:
        self.views = views
        self.view_ids = {id(view) for view in views.values()}
        self.output = output
        self.namespace: dict[str, Any] = {}
        self.classes: set[type] = set()

    def owns(self, obj: Any) -> bool:
        if isinstance(obj, FunctionType):
            return obj.__globals__ is self.namespace
        cls = obj if isinstance(obj, type) else type(obj)
        return any(base in self.classes for base in cls.__mro__)

    def getattr(self, obj: Any, name: str, default: Any = _MISSING) -> Any:
        check_attribute(name)
        value = getattr(obj, name) if default is _MISSING else getattr(obj, name, default)
        if self.hidden(value):
            raise AttributeError(f"access to {name!r} is not allowed: it holds interpreter internals")
        return value

    def hidden(self, value: Any) -> bool:
        """Whether `value` is something no attribute may hand to the code, whatever its name."""
        if isinstance(value, _HIDDEN_VALUES):
            return True
        if isinstance(value, ModuleType):
            return id(value) not in self.view_ids
        return type(value) is dict and "__builtins__" in value  # a module's namespace (a function's globals)

    def hasattr(self, obj: Any, name: str) -> bool:
        check_attribute(name)
        return hasattr(obj, name)

    def write(self, obj: Any) -> Any:
        if isinstance(obj, _MUTABLE_CONTAINERS) or self.owns(obj):
            return obj
        raise TypeError(f"cannot modify {type(obj).__name__!r} objects in the restricted sandbox")

    def setattr(self, obj: Any, name: str, value: Any) -> None:
        check_attribute(name)
        setattr(self.write(obj), name, value)

    def delattr(self, obj: Any, name: str) -> None:
        check_attribute(name)
        delattr(self.write(obj), name)

    def dir(self, obj: Any) -> list[str]:
        return [name for name in dir(obj) if not name.startswith("_")]

    def make_class(self, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kwargs: Any) -> type:
        cls = type(name, bases, namespace, **kwargs)
        self.classes.add(cls)
        return cls

    def import_module(self, name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0) -> ModuleType:
        if type(fromlist) is list and not fromlist and not level and name in sys.modules:
            # C code of an allowed module importing for itself (datetime's strftime wants `time`):
            # PyImport_Import asks this way, then takes the module from sys.modules, never from here;
            # compiled code always passes None or a tuple
            return None  # type: ignore[return-value]
        if level:
            raise ImportError("relative imports are not allowed in the restricted sandbox")
        if name not in self.views:
            raise ImportError(f"import of {name!r} is not allowed in the restricted sandbox (allowed: {_ALLOWED_TOP})")
        return self.views[name if fromlist else name.split(".")[0]]

    def printer(self, _getattr_: Any = None) -> _Printer:
        return _Printer(self)


class _Printer:
    """What RestrictedPython turns `print(...)` into: prints to the execution's output."""

    def __init__(self, guards: _Guards) -> None:
        self._guards = guards

    def _call_print(self, *objects: Any, **kwargs: Any) -> None:
        stream = kwargs.pop("file", None)
        if stream is None:
            stream = self._guards.output
        else:
            self._guards.getattr(stream, "write")
        print(*objects, file=stream, **kwargs)

    def __call__(self) -> str:
        raise NameError("the 'printed' variable is not supported in the sandbox; print() writes to the output")


def _unavailable(name: str) -> Any:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise NameError(f"{name}() is not available in the restricted sandbox")

    return refuse


def _one_argument_type(obj: Any) -> type:
    answer = type(obj)
    if issubclass(answer, type):  # a metaclass would build classes with any dunder method
        raise TypeError("type() of a class is not available in the restricted sandbox")
    return answer


class RestrictedEngine:
    """Compiles with RestrictedPython and runs code against guarded builtins."""

    mode = "restricted"

    def __init__(self) -> None:
        self.views = _build_views()
        self.base_builtins = dict(safe_builtins)
        self.base_builtins.update({name: getattr(builtins, name) for name in EXTRA_BUILTINS})
        self.base_builtins.update({name: _unavailable(name) for name in UNAVAILABLE})
        self.base_builtins.update(
            type=_one_argument_type,
            _getitem_=operator.getitem,
            _getiter_=iter,
            _iter_unpack_sequence_=guarded_iter_unpack_sequence,
            _unpack_sequence_=guarded_unpack_sequence,
            _inplacevar_=lambda op, target, value: _INPLACE[op](target, value),
            _apply_=lambda function, *args, **kwargs: function(*args, **kwargs),
        )

    def compile(self, source: str, filename: str) -> CodeType:
        try:
            tree = ast.parse(source, filename)
        except SyntaxError as exc:
            raise syntax_rejection(exc, filename) from None
        tree = _Relaxations.apply(tree)
        result = compile_restricted_exec(tree, filename)
        if result.errors:
            raise _rejection(result.errors[0], filename)
        return result.code

    def new_globals(self, output: TextIO, preset: dict[str, Any]) -> dict[str, Any]:
        guards = _Guards(self.views, output)
        namespace_builtins = dict(self.base_builtins)
        namespace_builtins.update(
            getattr=guards.getattr,
            hasattr=guards.hasattr,
            setattr=guards.setattr,
            delattr=guards.delattr,
            dir=guards.dir,
            _getattr_=guards.getattr,
            _write_=guards.write,
            _print_=guards.printer,
            __import__=guards.import_module,
            __metaclass__=guards.make_class,
        )
        guards.namespace.update({"__builtins__": namespace_builtins, "__name__": SANDBOX_MODULE, **preset})
        return guards.namespace
