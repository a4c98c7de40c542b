"""Print `export` lines pointing the test run at local PostgreSQL and Redis when they answer.

Variables already set are kept. When a service does not answer, its tests skip with a loud reason,
or fail when REQUIRE_SERVICES=1 (CI).
"""

import os
import socket
import sys


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


exports = {}
if "DATABASE_URL" not in os.environ:
    if answers("127.0.0.1", 5432):
        exports["DATABASE_URL"] = "postgres://postgres@127.0.0.1:5432/postgres"
    else:
        print(
            "!!! PostgreSQL does not answer on 127.0.0.1:5432: using SQLite; PostgreSQL tests will SKIP",
            file=sys.stderr,
        )
if "REDIS_URL" not in os.environ:
    if answers("127.0.0.1", 6379):
        exports["REDIS_URL"] = "redis://127.0.0.1:6379/15"
    else:
        print("!!! Redis does not answer on 127.0.0.1:6379: in-memory layer; Redis tests will SKIP", file=sys.stderr)
for name, value in exports.items():
    print(f"export {name}='{value}'")
