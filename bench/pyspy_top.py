#!/usr/bin/env python
"""Where a server's time went, from `py-spy record --format raw` output (collapsed stacks).

    bench/pyspy_top.py PROFILE.txt [N]     inclusive % per function, then self % per leaf line
Project frames (rooms/, accounts/, chatsite/) are marked with *.
"""

import collections
import sys


def main(argv) -> int:
    path, top = argv[1], int(argv[2]) if len(argv) > 2 else 40
    rows = [line.rstrip().rpartition(" ") for line in open(path) if line.strip()]  # noqa: SIM115
    total = sum(int(n) for _, _, n in rows) or 1
    incl, leaf = collections.Counter(), collections.Counter()
    for stack, _, n in rows:
        n = int(n)
        frames = stack.split(";")
        leaf[frames[-1]] += n
        seen = set()
        for f in frames[1:]:  # frames[0] is the thread
            name = f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0] + ")" if " (" in f else f
            if name not in seen:
                incl[name] += n
                seen.add(name)
    print(f"{total} samples\n\ninclusive:")
    for k, v in incl.most_common(top):
        mark = "*" if any(p in k for p in ("rooms/", "accounts/", "chatsite/")) else " "
        print(f"{100 * v / total:5.1f}% {mark} {k}")
    print("\nself (leaf):")
    for k, v in leaf.most_common(top // 2):
        print(f"{100 * v / total:5.1f}%   {k}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
