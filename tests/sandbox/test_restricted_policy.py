"""What the `restricted` backend refuses (RestrictedPython policy), and what it still allows."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from sandbox import Cell, Sandbox, create_sandbox

from .conftest import TEST_LIMITS

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def restricted() -> AsyncIterator[Sandbox]:
    async with create_sandbox("restricted", TEST_LIMITS, pool_size=2) as sandbox:
        yield sandbox


REFUSED = {
    "import os": ("import os", "ImportError", "import of 'os' is not allowed in the restricted sandbox"),
    "import sys": ("import sys", "ImportError", "import of 'sys' is not allowed"),
    "import subprocess": ("import subprocess", "ImportError", "import of 'subprocess' is not allowed"),
    "import ctypes": ("import ctypes", "ImportError", "import of 'ctypes' is not allowed"),
    "from os import path": ("from os import path", "ImportError", "import of 'os' is not allowed"),
    "import os.path": ("import os.path", "ImportError", "import of 'os.path' is not allowed"),
    "relative import": ("from . import runner", "ImportError", "relative imports are not allowed"),
    "__import__": ("__import__('os')", "NameError", "'__import__' is not allowed"),
    "__builtins__": ("print(__builtins__)", "NameError", "'__builtins__' is not allowed"),
    "__class__": ("x = ().__class__", "AttributeError", "access to '__class__' is not allowed"),
    "__subclasses__ chain": ("x = object.__subclasses__()", "AttributeError", "access to '__subclasses__' is not allowed"),
    "__globals__": ("def f():\n    pass\ng = f.__globals__", "AttributeError", "access to '__globals__' is not allowed"),
    "getattr __class__": ("c = getattr((), '__class__')", "AttributeError", "access to '__class__' is not allowed"),
    "getattr __dict__": ("d = getattr(1, '__dict__')", "AttributeError", "access to '__dict__' is not allowed"),
    "getattr __globals__": ("f = lambda: 1\ng = getattr(f, '__glo' + 'bals__')", "AttributeError", "access to '__globals__'"),
    "str.format": ("'{0.__class__}'.format(1)", "AttributeError", "access to 'format' is not allowed"),
    "str.format unbound": ("str.format('{0.__class__}', 1)", "AttributeError", "access to 'format' is not allowed"),
    "format_map": ("'{x.__class__}'.format_map({'x': 1})", "AttributeError", "access to 'format_map' is not allowed"),
    "getattr format": ("f = getattr('{0}', 'format')", "AttributeError", "access to 'format' is not allowed"),
    "UserString.format": ("import collections\ncollections.UserString('{0}').format(1)", "AttributeError", "'format'"),
    "generator frame": ("g = (i for i in [1])\nf = g.gi_frame", "AttributeError", "access to 'gi_frame' is not allowed"),
    "traceback": ("try:\n    1 / 0\nexcept Exception as e:\n    t = e.__traceback__", "AttributeError", "'__traceback__'"),
    "json.codecs": ("import json\nc = json.codecs", "AttributeError", "module 'json' has no attribute 'codecs'"),
    "datetime.sys": ("import datetime\ns = datetime.sys", "AttributeError", "module 'datetime' has no attribute 'sys'"),
    "collections.abc.sys": ("import collections.abc\ns = collections.abc.sys", "AttributeError", "has no attribute 'sys'"),
    "statistics.random": ("import statistics\nr = statistics.random", "AttributeError", "has no attribute 'random'"),
    "from json import decoder": ("from json import decoder", "ImportError", "cannot import name 'decoder'"),
    "requests internals": ("import requests\nrequests.install_transport(None)", "AttributeError", "has no attribute 'install_transport'"),
    "open": ("open('/etc/passwd')", "NameError", "open() is not available"),
    "exec": ("exec('import os')", "SyntaxError", "Exec calls are not allowed"),
    "eval": ("eval('1 + 1')", "SyntaxError", "Eval calls are not allowed"),
    "eval by name": ("run = eval\nrun('1')", "NameError", "eval() is not available"),
    "compile": ("compile('1', 'x', 'eval')", "NameError", "compile() is not available"),
    "vars": ("v = vars()", "NameError", "vars() is not available"),
    "patch a module": ("import json\njson.loads = len", "TypeError", "cannot modify 'module' objects"),
    "patch a library class": ("import collections\nsetattr(collections.Counter, 'total', len)", "TypeError", "cannot modify 'type' objects"),
    "star import": ("from json import *", "SyntaxError", "imports are not allowed"),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
async def test_refused(restricted: Sandbox, name: str) -> None:
    code, error_type, fragment = REFUSED[name]
    result = await restricted.execute(Cell(code="print('start')\n" + code))
    assert not result.ok
    assert result.error_type == error_type, result.error
    assert result.error.startswith(f"{error_type}: ")
    assert fragment in result.error
    assert "\n" not in result.error


ALLOWED = {
    "augmented item assignment": ("counts = {'a': 1}\ncounts['a'] += 2\nprint(counts)", "{'a': 3}"),
    "annotated assignment": ("limit: int = 3\nprint(limit)", "3"),
    "user classes are writable": ("class Box:\n    def __init__(self):\n        self.n = 1\nb = Box()\nb.n += 1\nprint(b.n)", "2"),
    "subclass with super": ("class D(dict):\n    def first(self):\n        return super().get('a')\nprint(D(a=1).first())", "1"),
    "function attributes": ("f = lambda: 1\nf.tag = 'x'\nprint(f.tag)", "x"),
    "namedtuple": ("import collections\nP = collections.namedtuple('P', 'x y')\nprint(P(1, 2).y)", "2"),
    "collections.abc": ("from collections import abc\nprint(isinstance({}, abc.Mapping))", "True"),
    "datetime": ("import datetime\nprint(datetime.datetime.strptime('2024-03-01', '%Y-%m-%d').month)", "3"),
    "re": ("import re\nprint(re.findall(r'[0-9]+', 'a1b22'))", "['1', '22']"),
    "json": ("import json\nprint(json.dumps({'a': [1, 2]}, sort_keys=True))", '{"a": [1, 2]}'),
    "math and statistics": ("import math, statistics\nprint(math.floor(statistics.mean([1, 2, 4])))", "2"),
    "itertools and functools": ("import itertools, functools\nprint(functools.reduce(max, itertools.chain([1], [5, 3])))", "5"),
    "requests exceptions": ("from requests.exceptions import HTTPError\nimport requests\nprint(issubclass(HTTPError, requests.RequestException))", "True"),
    "f-strings": ("x = {'a': 1.5}\nprint(f\"{x['a']:.2f}|{x!r}\")", "1.50|{'a': 1.5}"),
    "unpacking": ("pairs = {'a': 1, 'b': 2}\nfor k, v in sorted(pairs.items()):\n    print(k, v)\nfirst, *rest = [1, 2, 3]\nprint(rest)", "a 1\nb 2\n[2, 3]"),
    "public dir": ("print('upper' in dir('x'), all(not n.startswith('_') for n in dir('x')))", "True True"),
}


@pytest.mark.parametrize("name", sorted(ALLOWED))
async def test_allowed(restricted: Sandbox, name: str) -> None:
    code, expected = ALLOWED[name]
    result = await restricted.execute(Cell(code=code))
    assert result.ok, result.error
    assert result.stdout == expected + "\n"
