"""`python -m runner --mode restricted|plain [--workdir DIR] [fork-server options]`.

Without a fork-server option it holds one conversation on stdin/stdout (in `--workdir`,
when given) and exits. With `--fork-server SOCKET` (it listens there) or `--listen-fd FD`
(an inherited listening socket) it becomes a fork server; the confinement options then
apply to every child (see `confine`), `--workdir` being where the children work.
"""

from __future__ import annotations

import argparse
import functools
import os
import socket

from .confine import Confinement
from .engines import MODES, load_engine


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="runner", description="CodeTool in-sandbox runner")
    parser.add_argument("--mode", choices=MODES, default="restricted")
    parser.add_argument("--workdir", help="working directory of the code (fork server: where children get theirs)")
    server = parser.add_argument_group("fork server")
    endpoint = server.add_mutually_exclusive_group()
    endpoint.add_argument("--fork-server", metavar="SOCKET", help="serve executions on this Unix socket path")
    endpoint.add_argument("--listen-fd", type=int, metavar="FD", help="serve executions on this inherited listening socket")
    server.add_argument("--spares", type=int, default=2, help="children kept forked and waiting")
    server.add_argument("--private-workdir", action="store_true", help="a private tmpfs on --workdir per child")
    server.add_argument("--workdir-mb", type=int, default=64, help="size of that tmpfs")
    server.add_argument("--uid-base", type=int, help="started as root: children run as uid-base + slot")
    server.add_argument("--uid-count", type=int, default=0, help="how many uids from --uid-base")
    server.add_argument("--unshare-net", action="store_true", help="a new, empty network namespace per child")
    server.add_argument("--own-pid-namespace", action="store_true", help="the server runs in a pid namespace of its own")
    parser.add_argument("--audit-hook", action="store_true", help="install the audit hook right before the code runs")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    engine = load_engine(args.mode)
    if args.fork_server or args.listen_fd is not None:
        from .forkserver import listen_on_path, serve_forever

        listener = listen_on_path(args.fork_server) if args.fork_server else socket.socket(fileno=args.listen_fd)
        confinement = Confinement(
            workdir=args.workdir,
            private_workdir=args.private_workdir,
            workdir_mb=args.workdir_mb,
            uid_base=args.uid_base,
            uid_count=args.uid_count,
            unshare_net=args.unshare_net,
            audit_hook=args.audit_hook,
            own_pid_namespace=args.own_pid_namespace,
        )
        serve_forever(listener, engine, args.spares, confinement)
    else:
        from . import audit_hook
        from .worker import serve_one

        if args.workdir:
            os.chdir(args.workdir)
            os.environ.update(HOME=args.workdir, TMPDIR=args.workdir)
        lock_down = functools.partial(audit_hook.install, os.getcwd(), audit_hook.python_roots()) if args.audit_hook else None
        serve_one(0, 1, engine, lock_down)
        os._exit(0)  # the channel is closed and the code's processes are gone: skip interpreter shutdown


if __name__ == "__main__":
    main()
