"""`python -m tools.cluster up|down|status`: the local test cluster (see `tools.cluster`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tools.cluster import lifecycle, stand_ins
from tools.cluster.state import ClusterError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.cluster", description="The local test cluster."
    )
    parser.add_argument("command", choices=["up", "down", "status", lifecycle.STAND_INS])
    parser.add_argument("--state", help=argparse.SUPPRESS)  # marks the stand-ins as ours
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            lifecycle.up()
        elif args.command == "down":
            lifecycle.down()
        elif args.command == "status":
            return 0 if lifecycle.status() else 1
        else:
            return stand_ins.run()
    except ClusterError as error:
        print(f"cluster: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
