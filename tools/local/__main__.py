"""`python -m tools.local up|down`: the local instance (see `tools.local`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from opstrace.errors import OpstraceError
from tools.cluster.state import ClusterError
from tools.local import no_loki, up_down
from tools.local.home import NO_LOKI


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.local", description="The local instance."
    )
    parser.add_argument("command", choices=["up", "down", NO_LOKI])
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)  # no-loki's
    parser.add_argument("--state", help=argparse.SUPPRESS)  # marks a process as ours
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            up_down.up()
        elif args.command == "down":
            up_down.down()
        else:
            no_loki.serve(args.port)
    except (ClusterError, OpstraceError) as error:
        print(f"local: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
