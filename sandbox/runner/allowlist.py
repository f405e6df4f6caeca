"""What restricted code is given: the vetted names of each allowed module and builtin, and why.

The policy (`policy`) holds one invariant: every attribute the code reads or writes goes
through a guard that refuses names starting with `_` and the frame/code/generator
internals, and that refuses any value which is a frame, a code object, a traceback, a
module other than these views, or a module's namespace. That only holds while nothing
the code can call turns a *string* into an attribute access (or evaluates a string as
code) on its behalf. So every name below was reviewed for that, and left out when it:

* gets, sets or copies attributes by a string argument: `functools.update_wrapper` and
  `wraps` (`updated=("__globals__",)` merged a stdlib module's globals into the code's),
  `operator.attrgetter`/`methodcaller`, `copy`/`pickle`/`copyreg` (`__reduce_ex__` hooks
  call any callable on any arguments), `vars`, `inspect`, `dataclasses` helpers,
  `string.Formatter`, `str.format`/`format_map` and `logging` formatters (a field such as
  `{0.__globals__}` is an attribute access);
* evaluates a string: `functools.singledispatch`/`singledispatchmethod` (`register`
  evaluates string annotations with `eval` in the function's globals), `typing`,
  `eval`/`exec`/`compile`;
* writes attributes on objects it did not create: `functools.total_ordering`,
  `cached_property`, `partialmethod` (of no use to step code either);
* hands out frames, code, modules or the interpreter: `sys`, `gc`, `traceback`, `types`,
  `weakref`, `os`, `io`, `importlib`, `builtins`.

Module by module, what is exposed and why it is safe (nothing else of the module exists
in the view, and a module never holds another module but its listed submodules):

* `collections`: the containers and `namedtuple`, which builds code only from field
  names it first checks are identifiers not starting with `_`;
* `collections.abc`: the ABCs, whose mixin methods call fixed protocol names only;
* `datetime`: the C types, `UTC`, `MINYEAR`/`MAXYEAR`; `strftime`/`strptime` take format
  codes, not fields;
* `functools`: `cache`, `cmp_to_key`, `lru_cache`, `partial`, `reduce`: they call what they
  are given; `lru_cache` copies only the fixed wrapper names, from the code's own function;
* `itertools`: everything: C iterators over what they are given;
* `json`: `dumps`, `loads`, `dump`, `load`, the encoder, decoder and error: hooks get data,
  `cls=` builds a class the code could build itself and calls fixed method names;
* `math`: everything public: numbers in, numbers out;
* `re`: the functions, flags, `Pattern`, `Match`, `error` (not the deprecated `template`):
  templates name groups, never attributes;
* `statistics`: the functions, `NormalDist`, `StatisticsError`: numbers in, numbers out,
  data read through fixed protocol names;
* `requests`: the shim's calls, `Session`, `Response` and exceptions: every call is a
  message to the host's tool gateway.

Builtins: RestrictedPython's `safe_builtins` (its `setattr`/`delattr`/`_getattr_` replaced
by our guards) plus `EXTRA_BUILTINS`: constructors, iteration helpers and exceptions that
call only the callables they are given or fixed protocol methods. `format(value, spec)`
takes a format *spec*, never a field name. `type` answers one argument and never with a
metaclass (three-argument `type` would build classes with any dunder, bypassing the
compile-time name check). `getattr`, `hasattr`, `setattr`, `delattr`, `dir` and
`__import__` are the policy's guards; `UNAVAILABLE` names raise a clear `NameError`.
"""

from __future__ import annotations

import collections
import collections.abc
import datetime
import functools
import itertools
import json
import math
import re
import statistics
from types import ModuleType

from . import requests_shim

_COLLECTIONS_ABC = (
    "AsyncGenerator", "AsyncIterable", "AsyncIterator", "Awaitable", "ByteString", "Callable", "Collection",
    "Container", "Coroutine", "Generator", "Hashable", "ItemsView", "Iterable", "Iterator", "KeysView", "Mapping",
    "MappingView", "MutableMapping", "MutableSequence", "MutableSet", "Reversible", "Sequence", "Set", "Sized",
    "ValuesView", "Buffer",
)  # fmt: skip
_ITERTOOLS = (
    "accumulate", "batched", "chain", "combinations", "combinations_with_replacement", "compress", "count", "cycle",
    "dropwhile", "filterfalse", "groupby", "islice", "pairwise", "permutations", "product", "repeat", "starmap",
    "takewhile", "tee", "zip_longest",
)  # fmt: skip
_RE = (
    "compile", "escape", "findall", "finditer", "fullmatch", "match", "purge", "search", "split", "sub", "subn",
    "error", "Pattern", "Match", "RegexFlag", "NOFLAG", "A", "ASCII", "I", "IGNORECASE", "L", "LOCALE", "M",
    "MULTILINE", "S", "DOTALL", "U", "UNICODE", "X", "VERBOSE",
)  # fmt: skip
_STATISTICS = (
    "NormalDist", "StatisticsError", "correlation", "covariance", "fmean", "geometric_mean", "harmonic_mean", "kde",
    "kde_random", "linear_regression", "mean", "median", "median_grouped", "median_high", "median_low", "mode",
    "multimode", "pstdev", "pvariance", "quantiles", "stdev", "variance",
)  # fmt: skip
_REQUESTS_EXCEPTIONS = ("ConnectionError", "HTTPError", "InvalidJSONError", "JSONDecodeError", "RequestException", "Timeout")

ALLOWED_MODULES: dict[str, tuple[ModuleType, tuple[str, ...]]] = {
    "collections": (collections, (
        "ChainMap", "Counter", "OrderedDict", "UserDict", "UserList", "UserString", "defaultdict", "deque", "namedtuple",
    )),
    "collections.abc": (collections.abc, _COLLECTIONS_ABC),
    "datetime": (datetime, ("date", "datetime", "time", "timedelta", "timezone", "tzinfo", "UTC", "MINYEAR", "MAXYEAR")),
    "functools": (functools, ("cache", "cmp_to_key", "lru_cache", "partial", "reduce")),
    "itertools": (itertools, _ITERTOOLS),
    "json": (json, ("dump", "dumps", "load", "loads", "JSONDecoder", "JSONDecodeError", "JSONEncoder")),
    "math": (math, tuple(name for name in dir(math) if not name.startswith("_"))),
    "re": (re, _RE),
    "requests": (requests_shim, (
        "delete", "get", "head", "patch", "post", "put", "request", "Session", "Response", *_REQUESTS_EXCEPTIONS,
    )),
    "requests.exceptions": (requests_shim.exceptions, _REQUESTS_EXCEPTIONS),
    "statistics": (statistics, _STATISTICS),
}  # fmt: skip
"""Module name -> (the real module, the names its view exposes where this Python has them)."""

EXTRA_BUILTINS = (
    "all", "any", "ascii", "bin", "bytearray", "bytes", "classmethod", "dict", "enumerate", "filter", "format",
    "frozenset", "iter", "list", "map", "max", "min", "next", "object", "property", "reversed", "set", "sorted",
    "staticmethod", "sum", "super", "tuple", "zip", "ConnectionError", "FileNotFoundError", "PermissionError",
    "RecursionError", "TimeoutError", "ModuleNotFoundError",
)  # fmt: skip
"""Builtins added to RestrictedPython's `safe_builtins` (reviewed above)."""

UNAVAILABLE = (
    "open", "exec", "eval", "compile", "input", "globals", "locals", "vars", "breakpoint", "help", "memoryview",
    "exit", "quit",
)  # fmt: skip
"""Builtins that raise a clear `NameError` instead."""
