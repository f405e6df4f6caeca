"""`python -m runner --mode restricted|plain [--fork-server SOCKET [--spares N]]`.

Without `--fork-server` it holds one conversation on stdin/stdout and exits; with it, it
becomes a fork server on that Unix socket (see `forkserver`).
"""

from __future__ import annotations

import argparse

from .engines import MODES, load_engine


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="runner", description="CodeTool in-sandbox runner")
    parser.add_argument("--mode", choices=MODES, default="restricted")
    parser.add_argument("--fork-server", metavar="SOCKET", help="serve executions on this Unix socket")
    parser.add_argument("--spares", type=int, default=2, help="fork server: children kept forked and waiting")
    args = parser.parse_args(argv)
    engine = load_engine(args.mode)
    if args.fork_server:
        from .forkserver import serve_forever

        serve_forever(args.fork_server, engine, args.spares)
    else:
        from .worker import serve_one

        serve_one(0, 1, engine)


if __name__ == "__main__":
    main()
