"""Containers per second of the docker backend's per-query pool, against the engine's own floor.

Method: `--containers` queries, `--in-flight` at a time, each opening a session of the
`docker` backend (`container_per: query`, pool of `--pool` warm containers, `sessions` set
to the number of queries as `agent run` sets it), running one `print(1)` in it and closing
it; the clock runs from `start()` to the last container removed (`aclose`), so every
container's whole life is counted: create, start, the fork server's boot up to its `ready`,
the execution, removal. Baseline, same process, same machine, same time: the same number of
containers with the same locked-down settings made by bare SDK calls on as many threads,
each running `python3 -c pass` (no runner) and removed once it exited: what the engine
alone costs per container. Both print containers/s and, where /proc shows them, the CPU
seconds dockerd and containerd spent per container (the rest of a container's cost is
runc, the shim and what runs inside it, which exit with it).

    python bench/docker_pool.py [--containers 32] [--pool 8] [--in-flight 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from codetool_kernel.logging import configure_logging  # noqa: E402
from sandbox import Cell, create_sandbox  # noqa: E402
from sandbox.docker_backend import DockerSandbox  # noqa: E402
from sandbox.docker_engine import connect  # noqa: E402
from sandbox.owner import owner_token  # noqa: E402

ENGINE_PROCESSES = ("dockerd", "containerd")


def engine_cpu_s() -> float | None:
    """CPU seconds dockerd and containerd have used so far (None when /proc does not show them)."""
    total, found = 0.0, False
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            comm = Path(f"/proc/{entry}/comm").read_text().strip()
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if comm in ENGINE_PROCESSES:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            found = True
    return total if found else None


async def through_pool(containers: int, pool: int, in_flight: int) -> float:
    """Seconds for `containers` queries through the per-query pool, removals included."""
    sandbox = create_sandbox("docker", pool_size=pool, container_per="query", sessions=containers, audit_hook=True)
    assert isinstance(sandbox, DockerSandbox)
    slots = asyncio.Semaphore(in_flight)

    async def query(key: str) -> None:
        async with slots, sandbox.session(key) as session:
            result = await session.execute(Cell(code="print(1)"))
            if result.stdout != "1\n":
                raise RuntimeError(f"unexpected output from query {key}: {result.stdout!r} {result.error}")

    started = time.perf_counter()
    async with sandbox:
        await asyncio.gather(*(query(str(i)) for i in range(containers)))
    return time.perf_counter() - started


def bare_engine(containers: int, threads: int) -> float:
    """Seconds for `containers` containers of the same settings running `python3 -c pass`, made and removed."""
    spec = DockerSandbox(container_per="execution", audit_hook=False).spec
    kwargs = {**spec.create_kwargs(owner_token()), "command": ["python3", "-c", "pass"], "stdin_open": False}
    client = connect()

    def lifecycle(_: int) -> None:
        container = client.containers.create(**kwargs)
        container.start()
        container.wait()
        client.api.remove_container(container.id, force=True)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as executor:
        list(executor.map(lifecycle, range(containers)))
    elapsed = time.perf_counter() - started
    client.close()
    return elapsed


def report(name: str, containers: int, seconds: float, engine_s: float | None) -> float:
    rate = containers / seconds
    engine = "-" if engine_s is None else f"{engine_s / containers * 1000:.0f}"
    print(f"{name:34} {seconds:8.2f} {rate:8.2f} {engine:>14}", flush=True)
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--containers", type=int, default=32)
    parser.add_argument("--pool", type=int, default=8)
    parser.add_argument("--in-flight", type=int, default=8)
    args = parser.parse_args()
    configure_logging(level="WARNING")
    print(f"{args.containers} containers; pool {args.pool}, {args.in_flight} queries in flight; load average {os.getloadavg()[0]:.1f}")
    print(f"{'':34} {'wall s':>8} {'cont./s':>8} {'engine ms/cont.':>14}")
    before = engine_cpu_s()
    seconds = bare_engine(args.containers, args.in_flight)
    middle = engine_cpu_s()
    floor = report("engine alone (python3 -c pass)", args.containers, seconds, None if before is None or middle is None else middle - before)
    seconds = asyncio.run(through_pool(args.containers, args.pool, args.in_flight))
    after = engine_cpu_s()
    rate = report("per-query pool (fork server, 1 run)", args.containers, seconds, None if middle is None or after is None else after - middle)
    print(f"pool / engine alone: {rate / floor:.2f}; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
