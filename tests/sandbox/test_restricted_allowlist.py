"""The restricted engine's allow-list, checked on the objects themselves (no sandbox process).

What the views and builtins hold is compared with the reviewed names in
`sandbox.runner.allowlist`, and with the callables that turn a string into an attribute
access or into code: none of them may be reachable, at any name, from a view, a class a
view holds, or the builtins.
"""

from __future__ import annotations

import builtins
import collections.abc
import copy
import dataclasses
import functools
import inspect
import io
import json
import logging
import operator
import pickle
import string
import sys
import typing
from types import SimpleNamespace
from typing import Any

import pytest

from sandbox.runner.allowlist import ALLOWED_MODULES
from sandbox.runner.policy import RestrictedEngine

STRING_DRIVEN = {
    builtins.getattr, builtins.setattr, builtins.delattr, builtins.hasattr, builtins.vars, builtins.dir, builtins.eval,
    builtins.exec, builtins.compile, builtins.globals, builtins.locals, builtins.__import__, builtins.open, type,
    functools.update_wrapper, functools.wraps, functools.singledispatch, functools.singledispatchmethod,
    functools.total_ordering, functools.cached_property, functools.partialmethod,
    operator.attrgetter, operator.methodcaller, copy.copy, copy.deepcopy, pickle.loads, pickle.dumps,
    inspect.getmembers, inspect.getattr_static, inspect.currentframe, string.Formatter, logging.Formatter,
    typing.get_type_hints, dataclasses.replace, dataclasses.asdict, dataclasses.fields, sys._getframe,
}  # fmt: skip
"""Callables that get, set or copy attributes by a string, evaluate a string, or hand out frames."""


def _dangerous(value: Any) -> bool:
    try:
        return value in STRING_DRIVEN
    except TypeError:  # unhashable: not one of them
        return False


@pytest.fixture(scope="module")
def engine() -> RestrictedEngine:
    return RestrictedEngine()


def test_each_view_holds_exactly_the_vetted_names(engine: RestrictedEngine) -> None:
    assert set(engine.views) == set(ALLOWED_MODULES)
    for name, view in engine.views.items():
        module, vetted = ALLOWED_MODULES[name]
        submodules = {other.rsplit(".", 1)[1] for other in ALLOWED_MODULES if other.rpartition(".")[0] == name}
        exposed = {attr for attr in vars(view) if not attr.startswith("_")}
        assert exposed == {attr for attr in vetted if hasattr(module, attr)} | submodules, name


def test_no_string_driven_callable_is_reachable_from_a_view(engine: RestrictedEngine) -> None:
    found = []
    for name, view in engine.views.items():
        for attr, value in vars(view).items():
            if attr.startswith("_"):
                continue
            if _dangerous(value):
                found.append(f"{name}.{attr}")
            if isinstance(value, type):  # and what its public attributes hold (class attributes, methods)
                found += [f"{name}.{attr}.{member}" for member in dir(value) if not member.startswith("_")
                          if _dangerous(inspect.getattr_static(value, member, None))]  # fmt: skip
    assert found == []


def test_no_string_driven_callable_is_a_builtin(engine: RestrictedEngine) -> None:
    namespace = engine.new_globals(io.StringIO(), {})
    assert [name for name, value in namespace["__builtins__"].items() if _dangerous(value)] == []


def test_type_answers_for_instances_never_with_a_metaclass(engine: RestrictedEngine) -> None:
    our_type = engine.new_globals(io.StringIO(), {})["__builtins__"]["type"]
    assert our_type([]) is list and our_type(json.JSONDecoder()) is json.JSONDecoder
    for cls in (int, type, json.JSONDecoder, collections.abc.Mapping):
        with pytest.raises(TypeError, match="type\\(\\) of a class is not available"):
            our_type(cls)


@pytest.mark.parametrize(
    "value",
    [sys, json, sys._getframe(), (lambda: 0).__code__, vars(json), json.loads.__globals__],
    ids=["sys", "json", "frame", "code", "module namespace", "function globals"],
)
def test_no_attribute_hands_out_interpreter_internals(engine: RestrictedEngine, value: Any) -> None:
    guarded_getattr = engine.new_globals(io.StringIO(), {})["__builtins__"]["getattr"]
    holder = SimpleNamespace(inside=value)
    with pytest.raises(AttributeError, match="holds interpreter internals"):
        guarded_getattr(holder, "inside")
    with pytest.raises(AttributeError, match="holds interpreter internals"):
        guarded_getattr(holder, "inside", None)


def test_the_views_themselves_and_plain_data_pass(engine: RestrictedEngine) -> None:
    guarded_getattr = engine.new_globals(io.StringIO(), {})["__builtins__"]["getattr"]
    holder = SimpleNamespace(view=engine.views["json"], data={"a": 1}, text="x")
    assert guarded_getattr(holder, "view") is engine.views["json"]
    assert guarded_getattr(holder, "data") == {"a": 1}
    assert guarded_getattr(engine.views["requests"], "exceptions") is engine.views["requests.exceptions"]
