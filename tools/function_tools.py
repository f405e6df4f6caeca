"""Python functions as tools: `@function_tool` and the `functions` provider.

A function's signature and docstring are its documentation; each call's JSON arguments are
validated against the signature with pydantic before the function runs (sync functions in a
worker thread, async ones awaited), on the host, behind the gateway like any API:

    @function_tool
    def get_weather(city: str, unit: Literal["C", "F"] = "C") -> dict[str, float]:
        \"\"\"Current temperature in a city.\"\"\"

    async with create_provider("functions", functions=[get_weather]) as provider: ...
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, overload

import pydantic_core
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, with_config
from typing_extensions import NotRequired, Required, TypedDict

from codetool_kernel.errors import ConfigError
from codetool_kernel.validation import FrozenModel, describe_validation_error
from tools.host_tools import (
    HOST_TOOLS_URL,
    HostTool,
    HostToolCatalog,
    ToolArgumentError,
    parameters_from_schema,
    refuse_duplicate_names,
    schema_type,
    tool_path,
)
from tools.registry import parse_options, register_provider
from tools.toolset import Query, ToolProvider, ToolSet

_MARK = "__codetool_tool__"
_TOOL_NAME = re.compile(r"[A-Za-z0-9_.-]{1,128}")
F = Callable[..., Any]


@dataclass(frozen=True)
class _ToolMark:
    name: str | None
    description: str | None


@overload
def function_tool(func: F, /) -> F: ...
@overload
def function_tool(*, name: str | None = None, description: str | None = None) -> Callable[[F], F]: ...
def function_tool(
    func: F | None = None, /, *, name: str | None = None, description: str | None = None
) -> F | Callable[[F], F]:
    """Mark a function as a tool: `@function_tool` or `@function_tool(name=..., description=...)`.

    The function itself is returned unchanged (still callable as before); `name` defaults to the
    function's name and `description` to its docstring.
    """

    def mark(target: F) -> F:
        setattr(target, _MARK, _ToolMark(name, description))
        return target

    return mark(func) if func is not None else mark


def is_function_tool(value: Any) -> bool:
    """Whether `value` was marked with `@function_tool`."""
    return callable(value) and isinstance(getattr(value, _MARK, None), _ToolMark)


class FunctionTool(HostTool):
    """A Python callable as a `HostTool`, with its arguments checked against its signature."""

    def __init__(self, func: F, *, name: str | None = None, description: str | None = None) -> None:
        mark = getattr(func, _MARK, None)
        if isinstance(mark, _ToolMark):
            name, description = name or mark.name, description or mark.description
        self.func = func
        self.name = name or getattr(func, "__name__", type(func).__name__)
        if not _TOOL_NAME.fullmatch(self.name):
            raise ConfigError(f"function tool {self.name!r}: a tool name may hold only letters, digits, _ . and -")
        self.description = description or inspect.getdoc(func) or ""
        try:
            signature = inspect.signature(func, eval_str=True)
        except (NameError, TypeError, ValueError) as exc:
            raise ConfigError(f"function tool {self.name!r}: cannot read its signature ({exc})") from None
        fields: dict[str, Any] = {}
        defaults: dict[str, Any] = {}
        self._positional: list[str] = []
        extra_allowed = False
        for parameter in signature.parameters.values():
            if parameter.kind is parameter.VAR_POSITIONAL:
                raise ConfigError(f"function tool {self.name!r}: *{parameter.name} cannot be passed by name")
            if parameter.kind is parameter.VAR_KEYWORD:
                extra_allowed = True
                continue
            if parameter.kind is parameter.POSITIONAL_ONLY:
                self._positional.append(parameter.name)
            annotation = Any if parameter.annotation is parameter.empty else parameter.annotation
            if parameter.default is parameter.empty:
                fields[parameter.name] = Required[annotation]
            else:
                fields[parameter.name] = NotRequired[annotation]
                defaults[parameter.name] = pydantic_core.to_jsonable_python(parameter.default, fallback=repr)
        arguments_type = with_config(ConfigDict(extra="allow" if extra_allowed else "forbid"))(
            TypedDict(f"{self.name}_arguments", fields)  # type: ignore[operator]
        )
        try:
            self._arguments = TypeAdapter(arguments_type)
            schema = self._arguments.json_schema()
        except Exception as exc:  # pydantic's schema errors have no common public base
            raise ConfigError(f"function tool {self.name!r}: unsupported parameter type ({exc})") from None
        self.parameters = parameters_from_schema(schema, defaults)
        self.returns = _return_shape(signature.return_annotation)

    def check(self, arguments: dict[str, Any]) -> dict[str, Any]:
        try:
            return dict(self._arguments.validate_python(arguments))
        except ValidationError as exc:
            raise ToolArgumentError(describe_validation_error(exc, root="arguments")) from None

    async def run(self, checked: dict[str, Any]) -> Any:
        positional = [checked.pop(name) for name in self._positional if name in checked]
        if inspect.iscoroutinefunction(self.func):
            return await self.func(*positional, **checked)
        result = await asyncio.to_thread(self.func, *positional, **checked)
        return await result if inspect.isawaitable(result) else result


def _return_shape(annotation: Any) -> str:
    if annotation is inspect.Signature.empty:
        return "any"
    try:
        schema = TypeAdapter(annotation).json_schema(mode="serialization")
    except Exception:  # not a type pydantic can describe: name it
        return getattr(annotation, "__name__", str(annotation))
    return schema_type(schema, schema.get("$defs"))


def _import_from_here(module_name: str) -> Any:
    """Import `module_name`, also from the working directory (last on the path: it shadows nothing), as
    `python -m` would find it; the `codetool` console script does not put the working directory on the path."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        here = os.getcwd()
        if exc.name != module_name.split(".")[0] or here in sys.path:
            raise
        sys.path.append(here)
        return importlib.import_module(module_name)


def load_tool_functions(spec: str) -> list[F]:
    """The tools a module spec names: `package.module` (its `@function_tool` functions) or
    `package.module:attribute` (a function, or a list of functions)."""
    module_name, _, attribute = spec.partition(":")
    try:
        module = _import_from_here(module_name)
    except Exception as exc:  # an import runs arbitrary code: any failure is the spec's
        hint = " (is its folder on PYTHONPATH?)" if isinstance(exc, ModuleNotFoundError) else ""
        raise ConfigError(
            f"functions provider: cannot import {module_name!r} ({type(exc).__name__}: {exc}){hint}"
        ) from None
    if attribute:
        try:
            value = getattr(module, attribute)
        except AttributeError:
            raise ConfigError(f"functions provider: module {module_name!r} has no attribute {attribute!r}") from None
        found = [value] if callable(value) else list(value) if isinstance(value, (list, tuple)) else []
        if not all(callable(item) for item in found):
            raise ConfigError(f"functions provider: {spec!r} must be a function or a list of functions")
    else:
        found = [value for value in vars(module).values() if is_function_tool(value)]
    if not found:
        raise ConfigError(
            f"functions provider: {spec!r} holds no tools (mark functions with @function_tool, "
            "or name a list of functions as 'module:attribute')"
        )
    return found


class FunctionToolsOptions(FrozenModel):
    """Options of the `functions` provider (`create_provider("functions", functions=[...])`)."""

    functions: tuple[Callable[..., Any], ...] = ()
    """The tools: plain functions or `@function_tool`-marked ones, sync or async."""
    module: str | None = None
    """More tools from a module: `package.module` (its marked functions) or `package.module:attribute`."""
    base_url: str = HOST_TOOLS_URL + "/functions"
    """The URL prefix shown to the model; tool `f` is `POST {base_url}/f`."""
    timeout_s: float = Field(30.0, gt=0)
    """Longest one call may run (a sync function's thread is left to finish on its own)."""
    max_result_chars: int = Field(200_000, gt=0)
    concurrency: int = Field(8, gt=0)
    """Tool calls running at once."""
    top_k: int | None = Field(None, gt=0)
    """Offer only the `top_k` tools most relevant to each query (None: all)."""


@register_provider("functions")
class FunctionToolsProvider(ToolProvider):
    """Tool sets of Python functions run on the host."""

    def __init__(self, **options: Any) -> None:
        self.options = parse_options(FunctionToolsOptions, "functions", options)
        functions = list(self.options.functions)
        if self.options.module is not None:
            functions += load_tool_functions(self.options.module)
        if not functions:
            raise ConfigError("functions provider: no tools; pass functions=[...] or module='package.module'")
        unique = list(dict.fromkeys(functions))
        self.tools = [FunctionTool(func) for func in unique]
        refuse_duplicate_names("functions", [tool.name for tool in self.tools])
        self._catalog = HostToolCatalog("functions", self.options.base_url, self.options.top_k)

    async def start(self) -> None:
        await self._catalog.serve(
            {tool_path(tool.name): tool for tool in self.tools},
            timeout_s=self.options.timeout_s,
            max_result_chars=self.options.max_result_chars,
            concurrency=self.options.concurrency,
        )

    async def aclose(self) -> None:
        await self._catalog.close()

    def toolset_for(self, query: Query) -> ToolSet:
        return self._catalog.toolset(query)

    def load_queries(self, path: str, ids: Sequence[str] | None = None) -> list[Query]:
        return self._catalog.load_queries(path, ids)
