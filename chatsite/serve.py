"""Run chatsite under daphne: `python -m chatsite.serve --bind HOST --port PORT` (`make run`, `make cluster`).

The same as `daphne -b HOST -p PORT chatsite.asgi:application`: every project behaviour under
daphne (heartbeats, frame limits, listen backlog, the header deadline, the graceful 4012 shutdown
on SIGTERM) is installed by chatsite/asgi.py itself (rooms/realtime/writer.py), so plain `daphne`
behaves the same. This only turns daphne's access log off (the application logs every socket
itself, in LOG_FORMAT).
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bind", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("-v", "--verbosity", type=int, default=1)
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")

    from daphne.cli import CommandLineInterface

    # No access log: the application logs each socket itself (chatsite.ws), in LOG_FORMAT.
    options = ["-b", args.bind, "-p", str(args.port), "-v", str(args.verbosity), "--access-log", os.devnull]
    CommandLineInterface().run([*options, "chatsite.asgi:application"])


if __name__ == "__main__":
    main(sys.argv[1:])
