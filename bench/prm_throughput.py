"""PRM scoring throughput: our `hf` server against the reference release's design, same model, same run.

Method
------
For each workload, build a small random Qwen2 checkpoint with `tests/support/tiny_lm.py` (CPU) and
serve it five ways, each in its own process:

- *batched* (the figure that counts): `python -m rm serve --backend hf --max-batch 32
  --batch-window-ms 5`, everything else default (prefix sharing and the prefix store on); each of
  the 16 concurrent clients sends the candidates of one agent step (n=2, the paper's setting) in
  one `/score` request, step after step;
- *reference* (the baseline): a server of this script (`--serve-reference MODEL_DIR`) that does what
  the reference release's PRM server did for each `/generate` request, one request at a time: apply
  the chat template, tokenize, `model.generate(max_new_tokens=3, do_sample=False, output_scores=True,
  return_dict_in_generate=True)`, read the yes/no logits of the first generated position, decode the
  generated tokens. Requests are serialised on one worker thread (one `generate` per candidate, no
  batching, nothing reused between requests). Each client sends one `/generate` request per
  candidate, as the reference release's agent did;
- *batched, no prefix store* (informative): *batched* with `--prefix-cache-tokens 0` (prefixes are
  shared within a pass, nothing is kept between passes);
- *batched, no prefix sharing* (informative): *batched* with `--no-prefix-sharing`;
- *unbatched* (informative): our server with `--max-batch 1 --batch-window-ms 0`, fed like the
  reference (a lone prompt takes the plain pass, so this is our scorer without batching or sharing).

All five score the same candidates from the same model files; before timing, the script checks that
*batched* and *reference* give the same scores for one step (the reference's score is the two-way
softmax of its logits, as ours). After a warm-up step, each round runs every design once, one after
the other, the order rotated from round to round (a load change on a shared machine then hits all
designs alike, none always following the same one). Each figure is the median over the rounds of
candidates scored per second, timed from the first request to the last answer; beside it, the
candidates per CPU-second the server process used (user + system time from /proc, all threads),
which a busy machine disturbs much less than wall-clock time. Ratios divide by the reference's
median of this same run. "passes" is the server's `forward_passes` counter: micro-batches for our
server, `generate` calls for the reference.

Workloads:
- `overhead`: compact two-message prompts (~80 tokens) on a 2-layer, 32-wide model; a forward
  pass costs mostly its fixed per-call price, which batching shares (the prompts are too short for
  prefix sharing, whose default minimum is 256 tokens);
- `prm` (the one that counts): full judging prompts of `rm.prompt.build_prm_messages` with a
  previous step (~900 tokens) on a 4-layer, 128-wide model; a forward pass costs mostly per-token
  arithmetic. All clients use the same API documentation, so their prompts share the judging
  instructions and the API docs (~700 tokens), not only the two candidates of a step; a client's
  next step repeats most of its previous prompt (only the previous step's output length changes);
- `prm-own-tools`: as `prm`, but every client has API docs of its own (as queries of different tool
  sets would): only the two candidates of one step, and a client's consecutive steps, share a
  long prefix.

Run: `python bench/prm_throughput.py [--workload overhead|prm|prm-own-tools|all] [--clients 16]
[--steps 8] [--rounds 5] [--no-informative]` (`--no-informative`: batched and reference only, so
more rounds fit in the same time) [--torch-threads N]. On a machine shared with other jobs, torch's
default (a thread per core) makes every parallel region wait for its slowest, descheduled thread: the
servers then measure the contention more than their own work; `--torch-threads 1` gives every
server, reference included, one thread.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # a script, not a package: make `rm` and `tests.support` importable

from rm import PriorStep, RewardModelClient, build_prm_messages, two_way_softmax  # noqa: E402
from rm.scores import Conversation  # noqa: E402
from tests.rm.helpers import rm_server_process  # noqa: E402
from tests.support.tiny_lm import build_tiny_lm  # noqa: E402

RESOURCES = ("movie", "person", "tv", "company", "collection", "review")
CANDIDATE = (
    "##Step {k}: look up item {i}\n```python\nresponse = requests.get(f'{{base}}/movie/{i}', headers=headers)\n"
    "data = response.json()\nprint(data.get('title'), data.get('release_date'))\n```\n[Step {k} Finished]"
)


def _api_docs(tool: str = "") -> str:
    return "\n".join(
        f"GET /{tool}{name}/{{id}}: returns the {name} with this id as JSON (fields: id, name, date, score, tags)"
        for name in RESOURCES
    )


def _compact(client: int, step: int, candidate: int) -> Conversation:
    return [
        {"role": "system", "content": f"Query {client}: is this step promising? yes or no."},
        {"role": "user", "content": f"print(requests.get(url + '/movie/{100 * client + 10 * step + candidate}').json())"},
    ]


def _judging(api_docs: Callable[[int], str]) -> Callable[[int, int, int], Conversation]:
    def conversation(client: int, step: int, candidate: int) -> Conversation:
        previous = [PriorStep(f"##Step 1: search\n```python\nprint({client})\n```", f"{client}\n" * (1 + step % 5))]
        return build_prm_messages(
            api_docs=api_docs(client),
            query=f"Which films released in {1990 + client} had the best reviews?",
            previous=previous,
            candidate=CANDIDATE.format(k=2, i=100 * client + 10 * step + candidate),
        )

    return conversation


@dataclass(frozen=True)
class Workload:
    hidden: int
    layers: int
    conversation: Callable[[int, int, int], Conversation]

    def step(self, client: int, step: int, n: int = 2) -> list[Conversation]:
        return [self.conversation(client, step, c) for c in range(n)]


WORKLOADS = {
    "overhead": Workload(hidden=32, layers=2, conversation=_compact),
    "prm": Workload(hidden=128, layers=4, conversation=_judging(lambda client: _api_docs())),
    "prm-own-tools": Workload(hidden=128, layers=4, conversation=_judging(lambda client: _api_docs(f"tool{client}/"))),
}


class ReferenceJudge:
    """The reference release's per-request computation: chat template, then a 3-token greedy `generate`."""

    def __init__(self, model_dir: str) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from rm.scorers.chat import answer_token_ids

        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype="auto").eval()
        self.yes_id, self.no_id = answer_token_ids(self.tokenizer, ("yes", "no"))
        self.calls = 0

    def score(self, messages: Conversation) -> float:
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        inputs = self.tokenizer([text], return_tensors="pt")
        output = self.model.generate(
            **inputs,
            max_new_tokens=3,
            eos_token_id=self.tokenizer.eos_token_id,
            pad_token_id=self.tokenizer.pad_token_id,
            do_sample=False,
            output_scores=True,
            return_dict_in_generate=True,
        )
        first = output.scores[0][0]
        self.tokenizer.batch_decode(output.sequences[:, inputs["input_ids"].shape[1] :], skip_special_tokens=False)
        self.calls += 1
        return two_way_softmax(first[self.yes_id].item(), first[self.no_id].item())


async def serve_reference(model_dir: str) -> None:
    """Serve `POST /generate` and `GET /health` for `ReferenceJudge`, one request at a time, until killed."""
    judge = ReferenceJudge(model_dir)
    one_at_a_time = ThreadPoolExecutor(max_workers=1)
    loop = asyncio.get_running_loop()

    async def generate(request: web.Request) -> web.Response:
        body = await request.json()
        score = await loop.run_in_executor(one_at_a_time, judge.score, body["messages"])
        return web.json_response({"response": score})

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"counters": {"forward_passes": judge.calls}})

    app = web.Application()
    app.add_routes([web.post("/generate", generate), web.get("/health", health)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    print(f"reference server listening on http://{host}:{port}", flush=True)
    await asyncio.Event().wait()


@asynccontextmanager
async def reference_server_process(model_dir: Path) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """This script with `--serve-reference` as a subprocess (its stderr goes to ours): yields it and its URL."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--serve-reference", str(model_dir),
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"},
    )  # fmt: skip
    assert process.stdout is not None
    try:
        async with asyncio.timeout(180):
            line = (await process.stdout.readline()).decode()
        match = re.search(r"listening on (http://\S+)", line)
        if not match:
            raise RuntimeError("the reference server did not start (its error is printed above)")
        yield process, match.group(1)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def run_per_step(url: str, workload: Workload, clients: int, steps: int) -> int:
    """Each client sends the n candidates of a step in one /score request, step after step."""
    async with RewardModelClient(url, max_connections=clients, timeout_s=600) as prm:

        async def agent(client: int) -> int:
            return sum([len(await prm.score(workload.step(client, step))) for step in range(steps)])

        return sum(await asyncio.gather(*(agent(c) for c in range(clients))))


async def run_per_candidate(url: str, workload: Workload, clients: int, steps: int) -> int:
    """Each client sends one /generate request per candidate, one after the other."""
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=600)) as session:

        async def agent(client: int) -> int:
            scored = 0
            for step in range(steps):
                for index, messages in enumerate(workload.step(client, step)):
                    async with session.post(f"{url}/generate", json={"index": index, "messages": messages}) as r:
                        r.raise_for_status()
                        await r.json()
                        scored += 1
            return scored

        return sum(await asyncio.gather(*(agent(c) for c in range(clients))))


Runner = Callable[[str, Workload, int, int], Awaitable[int]]


@dataclass(frozen=True)
class Design:
    name: str
    server_options: tuple[str, ...] | None  # None: this script's reference server
    run: Runner


def designs(max_batch: int) -> list[Design]:
    """Every design; batched and reference, which the ratio compares, first."""
    batched = ("--max-batch", str(max_batch), "--batch-window-ms", "5")
    return [
        Design("batched", batched, run_per_step),
        Design("reference", None, run_per_candidate),
        Design("batched, no prefix store", (*batched, "--prefix-cache-tokens", "0"), run_per_step),
        Design("batched, no prefix sharing", (*batched, "--no-prefix-sharing"), run_per_step),
        Design("unbatched", ("--max-batch", "1", "--batch-window-ms", "0"), run_per_candidate),
    ]


@dataclass(frozen=True)
class Server:
    url: str
    pid: int

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process so far, all its threads (Linux /proc)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def start_server(servers: AsyncExitStack, design: Design, model_dir: Path) -> Server:
    if design.server_options is None:
        process, url = await servers.enter_async_context(reference_server_process(model_dir))
    else:
        options = ("--model", str(model_dir), "--port", "0", "--log-level", "WARNING", *design.server_options)
        process, url = await servers.enter_async_context(rm_server_process(*options))
    return Server(url, process.pid)


async def forward_passes(url: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/health") as response:
        return (await response.json())["counters"]["forward_passes"]


@dataclass(frozen=True)
class Round:
    rate: float
    """candidates per second of wall-clock time"""
    cpu_rate: float
    """candidates per CPU-second the server spent"""
    passes: int


async def timed_round(server: Server, run: Runner, workload: Workload, clients: int, steps: int) -> Round:
    passes_before = await forward_passes(server.url)
    cpu_before = server.cpu_seconds()
    started = time.perf_counter()
    candidates = await run(server.url, workload, clients, steps)
    elapsed = time.perf_counter() - started
    cpu = server.cpu_seconds() - cpu_before
    return Round(candidates / elapsed, candidates / cpu, await forward_passes(server.url) - passes_before)


async def check_same_scores(servers: dict[str, Server], workload: Workload) -> None:
    """Stop the bench unless the reference server and ours agree on one step's scores."""
    step = workload.step(0, 0)
    async with RewardModelClient(servers["batched"].url) as prm:
        ours = [result.score for result in await prm.score(step)]
    reference = f"{servers['reference'].url}/generate"
    async with aiohttp.ClientSession() as session:
        theirs = []
        for index, messages in enumerate(step):
            async with session.post(reference, json={"index": index, "messages": messages}) as response:
                theirs.append((await response.json())["response"])
    gap = max(abs(a - b) for a, b in zip(ours, theirs, strict=True))
    print(f"  one step scored by batched and by reference: largest score gap {gap:.1e}")
    if gap > 1e-3:
        raise SystemExit(f"the reference server and ours disagree ({ours} vs {theirs}); the comparison is meaningless")


def prompt_tokens(model_dir: Path, workload: Workload) -> int:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    text = tokenizer.apply_chat_template(workload.conversation(0, 0, 0), add_generation_prompt=True, tokenize=False)
    return len(tokenizer.encode(text, add_special_tokens=False))


def summarise(name: str, rounds: dict[str, list[Round]]) -> float:
    """Print each design's medians and their ratios to the reference; return batched/reference (wall clock)."""
    rate = {design: statistics.median(r.rate for r in done) for design, done in rounds.items()}
    cpu_rate = {design: statistics.median(r.cpu_rate for r in done) for design, done in rounds.items()}
    for design in rounds:
        wall, cpu = rate[design] / rate["reference"], cpu_rate[design] / cpu_rate["reference"]
        print(
            f"  median {design:<27} {rate[design]:7.1f} candidates/s ({wall:5.2f}x reference),"
            f" {cpu_rate[design]:7.1f} per server CPU-second ({cpu:5.2f}x)"
        )
    ratio = rate["batched"] / rate["reference"]
    print(f"  {name}: batched/reference {ratio:.2f}x (target 5x: {'met' if ratio >= 5 else 'NOT met'})")
    return ratio


async def bench(name: str, args: argparse.Namespace) -> float:
    workload = WORKLOADS[name]
    compared = designs(args.max_batch)[: None if args.informative else 2]
    with tempfile.TemporaryDirectory(prefix="prm-bench-") as tmp:
        model_dir = build_tiny_lm(tmp, hidden_size=workload.hidden, num_layers=workload.layers)
        print(
            f"workload {name}: Qwen2 hidden={workload.hidden} layers={workload.layers} on CPU, "
            f"{prompt_tokens(model_dir, workload)} prompt tokens, {args.clients} clients x {args.steps} steps x 2 candidates"
        )
        async with AsyncExitStack() as stack:
            servers = {design.name: await start_server(stack, design, model_dir) for design in compared}
            for design in compared:
                await design.run(servers[design.name].url, workload, args.clients, 1)  # warm-up
            await check_same_scores(servers, workload)
            rounds: dict[str, list[Round]] = {design.name: [] for design in compared}
            for number in range(args.rounds):
                # Rotate the order so that no design always runs right after the same other one.
                for design in compared[number % len(compared) :] + compared[: number % len(compared)]:
                    done = await timed_round(servers[design.name], design.run, workload, args.clients, args.steps)
                    rounds[design.name].append(done)
                    print(
                        f"  round {number + 1} {design.name:<27} {done.rate:7.1f} candidates/s,"
                        f" {done.cpu_rate:7.1f} per server CPU-second ({done.passes} passes)"
                    )
    return summarise(name, rounds)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=[*WORKLOADS, "all"], default="all")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--steps", type=int, default=8, help="steps per client and round (2 candidates each)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument(
        "--informative",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run the informative designs (--no-informative: batched and reference only)",
    )
    parser.add_argument(
        "--torch-threads",
        type=int,
        help="OMP_NUM_THREADS of every server (all designs alike; default: torch's own choice)",
    )
    parser.add_argument("--serve-reference", metavar="MODEL_DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.torch_threads:
        os.environ["OMP_NUM_THREADS"] = str(args.torch_threads)  # inherited by every server process
    if args.serve_reference:
        await serve_reference(args.serve_reference)
        return
    for name in WORKLOADS if args.workload == "all" else [args.workload]:
        await bench(name, args)


if __name__ == "__main__":
    asyncio.run(main())
