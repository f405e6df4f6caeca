"""PRM scoring throughput: micro-batched `/score` against the reference one-candidate-per-call design.

Method
------
For each workload, build a small random Qwen2 checkpoint with `tests/support/tiny_lm.py` (CPU) and
start `python -m rm serve --backend hf` twice on it, as subprocesses:

- *batched*: `--max-batch 32 --batch-window-ms 5`; each of the 16 concurrent clients sends the
  candidates of one agent step (n=2, the paper's setting) in one `/score` request, step after step;
- *reference*: `--max-batch 1 --batch-window-ms 0` (no batching: one forward pass per candidate);
  each of the 16 concurrent clients sends one `/generate` request per candidate, as the reference
  release's agent did.

Both score the same candidates. After a warm-up, rounds alternate batched / reference (so a load
change on a shared machine hits both alike); each figure is the median over the rounds of
candidates scored per second, timed from the first request to the last answer. The ratio is
batched / reference, measured in this same run. Forward passes come from the server's counters.

Workloads:
- `overhead`: compact two-message prompts (~100 tokens) on a 2-layer, 32-wide model; a forward
  pass costs mostly its fixed per-call price, which batching shares;
- `prm`: full judging prompts of `rm.prompt.build_prm_messages` with a previous step (~700 tokens)
  on a 4-layer, 128-wide model; a forward pass costs mostly per-token arithmetic.

Run: `python bench/prm_throughput.py [--workload overhead|prm|all] [--clients 16] [--steps 8] [--rounds 3]`
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # a script, not a package: make `rm` and `tests.support` importable

from rm import PriorStep, RewardModelClient, build_prm_messages  # noqa: E402
from rm.scores import Conversation  # noqa: E402
from tests.rm.helpers import rm_server_process  # noqa: E402
from tests.support.tiny_lm import build_tiny_lm  # noqa: E402

API_DOCS = "\n".join(
    f"GET /{name}/{{id}}: returns the {name} with this id as JSON (fields: id, name, date, score, tags)"
    for name in ("movie", "person", "tv", "company", "collection", "review")
)
CANDIDATE = (
    "##Step {k}: look up item {i}\n```python\nresponse = requests.get(f'{{base}}/movie/{i}', headers=headers)\n"
    "data = response.json()\nprint(data.get('title'), data.get('release_date'))\n```\n[Step {k} Finished]"
)


def _compact(client: int, step: int, candidate: int) -> Conversation:
    return [
        {"role": "system", "content": f"Query {client}: is this step promising? yes or no."},
        {"role": "user", "content": f"print(requests.get(url + '/movie/{100 * client + 10 * step + candidate}').json())"},
    ]


def _judging(client: int, step: int, candidate: int) -> Conversation:
    previous = [PriorStep(f"##Step 1: search\n```python\nprint({client})\n```", f"{client}\n" * (1 + step % 5))]
    return build_prm_messages(
        api_docs=API_DOCS,
        query=f"Which films released in {1990 + client} had the best reviews?",
        previous=previous,
        candidate=CANDIDATE.format(k=2, i=100 * client + 10 * step + candidate),
    )


@dataclass(frozen=True)
class Workload:
    hidden: int
    layers: int
    conversation: Callable[[int, int, int], Conversation]

    def step(self, client: int, step: int, n: int = 2) -> list[Conversation]:
        return [self.conversation(client, step, c) for c in range(n)]


WORKLOADS = {
    "overhead": Workload(hidden=32, layers=2, conversation=_compact),
    "prm": Workload(hidden=128, layers=4, conversation=_judging),
}

Runner = Callable[[str, Workload, int, int], Awaitable[int]]


async def run_batched(url: str, workload: Workload, clients: int, steps: int) -> int:
    """Each client sends the n candidates of a step in one /score request, step after step."""
    async with RewardModelClient(url, max_connections=clients, timeout_s=600) as prm:

        async def agent(client: int) -> int:
            return sum([len(await prm.score(workload.step(client, step))) for step in range(steps)])

        return sum(await asyncio.gather(*(agent(c) for c in range(clients))))


async def run_reference(url: str, workload: Workload, clients: int, steps: int) -> int:
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


async def forward_passes(url: str) -> int:
    async with RewardModelClient(url) as client:
        return (await client.health()).counters["forward_passes"]


async def timed_round(url: str, run: Runner, workload: Workload, clients: int, steps: int) -> tuple[float, int]:
    """(candidates per second, forward passes) of one round."""
    before = await forward_passes(url)
    started = time.perf_counter()
    candidates = await run(url, workload, clients, steps)
    rate = candidates / (time.perf_counter() - started)
    return rate, await forward_passes(url) - before


def prompt_tokens(model_dir: Path, workload: Workload) -> int:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    text = tokenizer.apply_chat_template(workload.conversation(0, 0, 0), add_generation_prompt=True, tokenize=False)
    return len(tokenizer.encode(text, add_special_tokens=False))


async def bench(name: str, args: argparse.Namespace) -> float:
    workload = WORKLOADS[name]
    designs: dict[str, tuple[list[str], Runner]] = {
        "batched": (["--max-batch", str(args.max_batch), "--batch-window-ms", "5"], run_batched),
        "reference": (["--max-batch", "1", "--batch-window-ms", "0"], run_reference),
    }
    with tempfile.TemporaryDirectory(prefix="prm-bench-") as tmp:
        model_dir = build_tiny_lm(tmp, hidden_size=workload.hidden, num_layers=workload.layers)
        print(
            f"workload {name}: Qwen2 hidden={workload.hidden} layers={workload.layers} on CPU, "
            f"{prompt_tokens(model_dir, workload)} prompt tokens, {args.clients} clients x {args.steps} steps x 2 candidates"
        )
        async with AsyncExitStack() as servers:
            urls = {}
            for design, (options, _) in designs.items():
                _, urls[design] = await servers.enter_async_context(
                    rm_server_process("--model", str(model_dir), "--port", "0", "--log-level", "WARNING", *options)
                )
            for design, (_, run) in designs.items():
                await run(urls[design], workload, args.clients, 1)  # warm-up
            rates: dict[str, list[float]] = {d: [] for d in designs}
            for _ in range(args.rounds):
                for design, (_, run) in designs.items():
                    rate, passes = await timed_round(urls[design], run, workload, args.clients, args.steps)
                    rates[design].append(rate)
                    print(f"  {design:<10} {rate:8.1f} candidates/s ({passes} forward passes)")
    medians = {d: statistics.median(r) for d, r in rates.items()}
    ratio = medians["batched"] / medians["reference"]
    print(
        f"  median: batched {medians['batched']:.1f}/s, reference {medians['reference']:.1f}/s,"
        f" ratio batched/reference {ratio:.2f}x"
    )
    return ratio


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=[*WORKLOADS, "all"], default="all")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--steps", type=int, default=8, help="steps per client and round (2 candidates each)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-batch", type=int, default=32)
    args = parser.parse_args()
    for name in WORKLOADS if args.workload == "all" else [args.workload]:
        await bench(name, args)


if __name__ == "__main__":
    asyncio.run(main())
