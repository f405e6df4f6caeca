"""Ordinary step code still runs on every backend, policy and confinement notwithstanding.

The steps are what a policy model writes: call an API through `requests`, parse JSON or
text, compute with the standard library, print what was learned. Their API is a real
aiohttp server on loopback, reached from the host-side tool handler the sandbox calls
(as the tool gateway would forward it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp import web

from sandbox import Cell, Sandbox, ToolHandler, ToolRequest, ToolResponse

API = "https://api.example.test"
MOVIES = [
    {"id": 348, "title": "Alien", "release_date": "1979-05-25", "vote_average": 8.1, "genre_ids": [27, 878]},
    {"id": 679, "title": "Aliens", "release_date": "1986-07-18", "vote_average": 7.9, "genre_ids": [28, 878]},
    {"id": 8077, "title": "Alien 3", "release_date": "1992-05-22", "vote_average": 6.4, "genre_ids": [27, 878]},
]


async def _search(request: web.Request) -> web.Response:
    query = request.query.get("query", "").lower()
    return web.json_response({"page": 1, "results": [m for m in MOVIES if query in m["title"].lower()]})


async def _virtual(request: web.Request) -> web.Response:
    body = await request.json()
    return web.json_response({"error": "", "response": {"tool": body["tool_name"], "echo": body["tool_input"]}})


async def _text(request: web.Request) -> web.Response:
    return web.Response(text="Order #123 shipped on 2024-03-05; order #456 pending since 2024-02-28")


async def _missing(request: web.Request) -> web.Response:
    return web.json_response({"status_message": "The resource you requested could not be found."}, status=404)


@pytest.fixture
async def api() -> AsyncIterator[ToolHandler]:
    """A tool handler that forwards every call to a real HTTP API on loopback."""
    app = web.Application()
    app.router.add_get("/3/search/movie", _search)
    app.router.add_post("/virtual", _virtual)
    app.router.add_get("/orders.txt", _text)
    app.router.add_get("/3/movie/0", _missing)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    async with aiohttp.ClientSession(f"http://{host}:{port}") as client:

        async def forward(request: ToolRequest) -> ToolResponse:
            async with client.request(
                request.method, urlsplit(request.url).path, params=dict(request.params or {}), json=request.json_body,
                headers=dict(request.headers or {}),
            ) as response:  # fmt: skip
                return ToolResponse(status=response.status, headers=dict(response.headers), body=await response.text())

        yield forward
    await runner.cleanup()


STEPS = {
    "requests, json and f-strings": (
        "import requests\n"
        f"r = requests.get('{API}/3/search/movie', params={{'query': 'alien'}}, headers={{'Authorization': 'Bearer x'}})\n"
        "r.raise_for_status()\n"
        "data = r.json()\n"
        "for movie in data['results']:\n"
        "    print(f\"{movie['title']:<8}|{movie['vote_average']:>5.1f}|{movie['id']!r}\")\n"
        "print(r.status_code, r.ok, len(data['results']))\n",
        "Alien   |  8.1|348\nAliens  |  7.9|679\nAlien 3 |  6.4|8077\n200 True 3\n",
    ),
    "POST to a virtual API and dict work": (
        "import requests, json\n"
        f"r = requests.post('{API}/virtual', json={{'tool_name': 'weather', 'tool_input': {{'city': 'Paris', 'days': 2}}}})\n"
        "answer = r.json()['response']\n"
        "merged = {**answer['echo'], 'unit': 'C'}\n"
        "merged.setdefault('days', 9)\n"
        "merged['days'] += 1\n"
        "print(answer['tool'], json.dumps(merged, sort_keys=True))\n"
        "print(sorted(merged.items())[0], merged.get('missing', 'n/a'), list(merged)[-1])\n",
        'weather {"city": "Paris", "days": 3, "unit": "C"}\n(\'city\', \'Paris\') n/a unit\n',
    ),
    "an API error handled with try/except": (
        "import requests\n"
        f"r = requests.get('{API}/3/movie/0')\n"
        "try:\n"
        "    r.raise_for_status()\n"
        "except requests.exceptions.HTTPError as exc:\n"
        "    print('failed:', r.status_code, r.json()['status_message'][:12])\n"
        "else:\n"
        "    print('unexpected')\n"
        "finally:\n"
        "    print('done')\n",
        "failed: 404 The resource\ndone\n",
    ),
    "counting into nested containers": (
        "stats = {'a': {'n': 0}, 'b': {'n': 5}}\n"
        "for key in ['a', 'b', 'a']:\n"
        "    stats[key]['n'] += 1\n"
        "class Tally:\n"
        "    def __init__(self):\n"
        "        self.counts = {}\n"
        "    def add(self, key):\n"
        "        self.counts[key] = self.counts.get(key, 0)\n"
        "        self.counts[key] += 1\n"
        "tally = Tally()\n"
        "tally.add('x')\n"
        "tally.add('x')\n"
        "i = 0\n"
        "rows = [[0, 0], [0, 0]]\n"
        "rows[i + 1][-1] -= 3\n"
        "print(stats, tally.counts, rows)\n",
        "{'a': {'n': 2}, 'b': {'n': 6}} {'x': 2} [[0, 0], [0, -3]]\n",
    ),
    "re on a text answer": (
        "import re, requests\n"
        f"text = requests.get('{API}/orders.txt').text\n"
        "orders = re.findall(r'#(\\d+) (\\w+)', text)\n"
        "dates = [m.group(0) for m in re.finditer(r'\\d{4}-\\d{2}-\\d{2}', text)]\n"
        "print(orders, dates, re.sub(r'\\d', '9', 'a1b22'), bool(re.match('Order', text, re.I)))\n",
        "[('123', 'shipped'), ('456', 'pending')] ['2024-03-05', '2024-02-28'] a9b99 True\n",
    ),
    "datetime": (
        "import datetime\n"
        "released = datetime.datetime.strptime('1979-05-25', '%Y-%m-%d')\n"
        "later = released + datetime.timedelta(days=30)\n"
        "span = datetime.date(1986, 7, 18) - released.date()\n"
        "print(later.strftime('%d %b %Y'), f'{released:%Y/%m}', span.days, later.weekday(), released.isoformat())\n"
        "print(datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc).isoformat())\n",
        "24 Jun 1979 1979/05 2611 6 1979-05-25T00:00:00\n2024-01-01T00:00:00+00:00\n",
    ),
    "math and statistics": (
        "import math, statistics\n"
        "scores = [8.1, 7.9, 6.4]\n"
        "print(round(statistics.mean(scores), 2), statistics.median(scores), math.floor(max(scores)), math.sqrt(16))\n"
        "print(f'{math.pi:.3f}', math.isclose(sum(scores), 22.4), divmod(17, 5), abs(-2) ** 3, 7 // 2, 7 % 3)\n",
        "7.47 7.9 8 4.0\n3.142 True (3, 2) 8 3 1\n",
    ),
    "collections": (
        "import collections\n"
        "genres = collections.Counter(g for ids in [[27, 878], [28, 878], [27, 878]] for g in ids)\n"
        "by_decade = collections.defaultdict(list)\n"
        "for title, year in [('Alien', 1979), ('Aliens', 1986), ('Alien 3', 1992)]:\n"
        "    by_decade[year // 10 * 10].append(title)\n"
        "Movie = collections.namedtuple('Movie', ['title', 'year'])\n"
        "recent = collections.deque([Movie('Alien', 1979)], maxlen=2)\n"
        "recent.append(Movie('Aliens', 1986))\n"
        "recent.append(Movie('Alien 3', 1992))\n"
        "print(genres.most_common(1), dict(by_decade), [m.title for m in recent], recent[0].year)\n"
        "print(list(collections.OrderedDict(b=1, a=2)), collections.ChainMap({'x': 1}, {'x': 2, 'y': 3})['y'])\n",
        "[(878, 3)] {1970: ['Alien'], 1980: ['Aliens'], 1990: ['Alien 3']} ['Aliens', 'Alien 3'] 1986\n['b', 'a'] 3\n",
    ),
    "comprehensions, sorting and unpacking": (
        "rows = [{'t': 'b', 'v': 2}, {'t': 'a', 'v': 3}, {'t': 'c', 'v': 1}]\n"
        "best = sorted(rows, key=lambda row: row['v'], reverse=True)\n"
        "index = {row['t']: i for i, row in enumerate(rows)}\n"
        "first, *rest = [row['t'] for row in best]\n"
        "pairs = list(zip('xyz', range(3)))\n"
        "print(first, rest, index, {v % 2 for v in range(5)}, pairs[1:], max(rows, key=lambda r: r['t'])['v'])\n"
        "total = 0\n"
        "for value in range(10):\n"
        "    if value % 3 == 0:\n"
        "        continue\n"
        "    if value > 7:\n"
        "        break\n"
        "    total += value\n"
        "print(total, any(r['v'] > 2 for r in rows), all(isinstance(r, dict) for r in rows), (n := len(rows)) * 2, n)\n",
        "a ['b', 'c'] {'b': 0, 'a': 1, 'c': 2} {0, 1} [('y', 1), ('z', 2)] 1\n"
        "19 True True 6 3\n",
    ),
    "classes, inheritance and properties": (
        "class Item:\n"
        "    kind = 'item'\n"
        "    def __init__(self, name, price):\n"
        "        self.name = name\n"
        "        self.price = price\n"
        "    @property\n"
        "    def label(self):\n"
        "        return f'{self.name} ({self.price:.2f})'\n"
        "    def __lt__(self, other):\n"
        "        return self.price < other.price\n"
        "    def __eq__(self, other):\n"
        "        return self.price == other.price\n"
        "class Discounted(Item):\n"
        "    kind = 'discounted'\n"
        "    def discount(self, off):\n"
        "        self.price = self.price * (1 - off)\n"
        "        return super().label\n"
        "    @staticmethod\n"
        "    def describe(x):\n"
        "        return 'deal: ' + x\n"
        "items = [Item('pen', 2.5), Discounted('book', 20), Item('cup', 4)]\n"
        "print(items[1].discount(0.25))\n"
        "items[0].price += 1\n"
        "setattr(items[2], 'note', 'fragile')\n"
        "print([i.label for i in sorted(items)], Discounted.describe('x'), items[1].kind, getattr(items[2], 'note', None))\n"
        "print(isinstance(items[1], Item), hasattr(items[0], 'note'), type(items[0]) is Item, Item('a', 1) == Item('b', 1))\n",
        "book (15.00)\n['pen (3.50)', 'cup (4.00)', 'book (15.00)'] deal: x discounted fragile\nTrue False True True\n",
    ),
    "exceptions of the code's own": (
        "class ApiFailure(Exception):\n"
        "    pass\n"
        "def fetch(ok):\n"
        "    if not ok:\n"
        "        raise ApiFailure('no data')\n"
        "    return {'a': 1}\n"
        "results = []\n"
        "for ok in (True, False):\n"
        "    try:\n"
        "        results.append(fetch(ok)['a'])\n"
        "    except ApiFailure as exc:\n"
        "        results.append(str(exc))\n"
        "try:\n"
        "    {}['x']\n"
        "except (KeyError, IndexError) as exc:\n"
        "    results.append(repr(exc))\n"
        "try:\n"
        "    int('x')\n"
        "except ValueError:\n"
        "    results.append('bad int')\n"
        "print(results)\n",
        "[1, 'no data', \"KeyError('x')\", 'bad int']\n",
    ),
    "json round trips": (
        "import json\n"
        "text = json.dumps({'b': [1, 2.5, None, True], 'a': 'é'}, indent=1, sort_keys=True, ensure_ascii=False)\n"
        "back = json.loads(text)\n"
        "try:\n"
        "    json.loads('{bad')\n"
        "except json.JSONDecodeError as exc:\n"
        "    print('invalid at', exc.pos)\n"
        "print(text.splitlines()[1], back['b'][1:], json.dumps(back, separators=(',', ':')))\n",
        'invalid at 1\n "a": "é", [2.5, None, True] {"a":"\\u00e9","b":[1,2.5,null,true]}\n',
    ),
    "functools, itertools and generators": (
        "import functools, itertools\n"
        "@functools.lru_cache(maxsize=None)\n"
        "def fib(n):\n"
        "    return n if n < 2 else fib(n - 1) + fib(n - 2)\n"
        "def pages(total, size):\n"
        "    start = 0\n"
        "    while start < total:\n"
        "        yield (start, min(start + size, total))\n"
        "        start += size\n"
        "add = functools.partial(lambda a, b: a + b, 10)\n"
        "groups = {k: len(list(g)) for k, g in itertools.groupby('aabccc')}\n"
        "print(fib(30), list(pages(5, 2)), add(5), functools.reduce(lambda a, b: a * b, [1, 2, 3, 4]), groups)\n"
        "print(list(itertools.islice(itertools.chain([1], itertools.count(5)), 4)),\n"
        "      list(itertools.combinations('abc', 2))[:2])\n",
        "832040 [(0, 2), (2, 4), (4, 5)] 15 24 {'a': 2, 'b': 1, 'c': 3}\n[1, 5, 6, 7] [('a', 'b'), ('a', 'c')]\n",
    ),
    "strings and % formatting": (
        "name = '  The Matrix  '\n"
        "clean = name.strip()\n"
        "words = clean.lower().split()\n"
        "print('-'.join(words), clean.replace('Matrix', 'Room').upper(), clean.startswith('The'), clean[::-1][:3])\n"
        "print('%s has %d words (%.1f%%)' % (clean, len(words), 12.345), '{}'.join(['a', 'b']), 'x'.center(5, '*'))\n",
        "the-matrix THE ROOM True xir\nThe Matrix has 2 words (12.3%) a{}b **x**\n",
    ),
    "closures": (
        "def counter():\n"
        "    state = {'count': 0}\n"
        "    def step():\n"
        "        state['count'] += 1\n"
        "        return state['count']\n"
        "    return step\n"
        "tick = counter()\n"
        "tick()\n"
        "print(tick(), (lambda *a, **k: (a, sorted(k)))(1, 2, z=3, y=4), 'yes' if tick() > 2 else 'no')\n",
        "2 ((1, 2), ['y', 'z']) yes\n",
    ),
}


@pytest.mark.parametrize("step", sorted(STEPS))
async def test_an_ordinary_step_runs(sandbox: Sandbox, api: ToolHandler, step: str) -> None:
    code, expected = STEPS[step]
    result = await sandbox.execute(Cell(code=code), api)
    assert result.ok, result.error
    assert result.stdout == expected


async def test_a_step_builds_on_the_replayed_ones(sandbox: Sandbox, api: ToolHandler) -> None:
    replay = [
        "import requests\n"
        f"movies = requests.get('{API}/3/search/movie', params={{'query': 'alien'}}).json()['results']\nprint(movies)",
        "titles = {m['id']: m['title'] for m in movies}\nprint('hidden')",
    ]
    result = await sandbox.execute(Cell(replay=replay, code="print(titles[679], len(movies))"), api)
    assert result.ok, result.error
    assert result.stdout == "Aliens 3\n"
