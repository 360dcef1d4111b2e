"""`make bench`: run the benchmarks in bench/.  python -m bench [name] [options of that benchmark]"""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = {"cadence_tick": "bench.cadence_tick", "profile_send": "bench.profile_send"}


def main() -> None:
    args = sys.argv[1:]
    names = [args.pop(0)] if args and not args[0].startswith("-") else ["cadence_tick"]
    for name in names:
        if name not in BENCHMARKS:
            sys.exit(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
        importlib.import_module(BENCHMARKS[name]).main(args)


if __name__ == "__main__":
    main()
