"""`make bench`: run the benchmarks in bench/.  python -m bench [name] [options of that benchmark]

Without a name it runs the cadence engine benchmark (tick, end to end, memory, welcome latency).
"""

from __future__ import annotations

import runpy
import sys

BENCHMARKS = {
    "send": "bench.send",
    "post_office": "bench.post_office_bench",
    "cadence_tick": "bench.cadence_tick",
    "profile_send": "bench.profile_send",
    "batch_send": "bench.batch_send",
    "send_cpu": "bench.send_cpu",
    "admin_list": "bench.admin_list",
    "metrics_scrape": "bench.metrics_scrape",
    "chaos": "bench.chaos",
    "trust": "bench.trust",
    "retention": "bench.retention",
}


def main() -> None:
    args = sys.argv[1:]
    name = args.pop(0) if args and not args[0].startswith("-") else "cadence_tick"
    if name not in BENCHMARKS:
        sys.exit(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
    sys.argv = [BENCHMARKS[name], *args]
    runpy.run_module(BENCHMARKS[name], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
