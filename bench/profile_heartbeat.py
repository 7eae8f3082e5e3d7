"""Where a heartbeat's time goes inside the gateway: `bidao run` under cProfile.

Run `python -m bench.profile_heartbeat [--boxes 1000] [--frames 20000] [--rate 1000]`.
`--boxes` call boxes are imported with `bidao import`, the gateway runs as
`python -m cProfile -o FILE bidao run` against its own mosquitto, a publisher process sends
`--frames` heartbeats round-robin at `--rate`/s (each one changing nothing a person sees:
same battery, same signal, device online), the gateway is stopped once all are acked, and
the functions with the most cumulative time are printed in ms per heartbeat. cProfile sees
the event loop's thread only; its own overhead inflates every figure, so compare the rows
with each other rather than with the unprofiled CPU per frame.
"""

from __future__ import annotations

import argparse
import io
import pstats
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.harness import (
    BIDAO,
    Gateway,
    PublishPlan,
    children,
    free_port,
    gateway_config,
    households_csv,
    import_grid,
    publisher_result,
    start_mosquitto,
    start_publisher,
    units_csv,
)
from bench.scale import wait_acks

OURS = ("gateway/", "firmware_protocol/", "alerts/", "api/")
SKIP = ("supervisor.py", "runner.py", "api/cli.py", "(<module>)")


def _table(rows: list[tuple[float, float, int, str]], frames: int) -> list[str]:
    lines = ["| function | cumulative ms/frame | own ms/frame | calls/frame |", "|---|---|---|---|"]
    lines += [
        f"| {where} | {cum / frames * 1e3:.3f} | {own / frames * 1e3:.3f} | {calls / frames:.2f} |"
        for cum, own, calls, where in rows
    ]
    return lines


def top_costs(profile: Path, frames: int, limit: int) -> str:
    """Two tables in ms per frame: the most own time anywhere (the epoll wait excluded), and
    the most cumulative time in Bidao's own functions (the supervisor and runner excluded)."""
    stats = pstats.Stats(str(profile), stream=io.StringIO())
    rows = []
    for (filename, line, name), (_cc, calls, own, cum, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        where = filename.split("/site-packages/")[-1].split("/lib/python3.11/")[-1]
        where = where.split("/bench/", 1)[-1]
        rows.append((cum, own, calls, f"{where}:{line}({name})"))
    by_own = sorted((r for r in rows if "epoll" not in r[3]), key=lambda r: r[1], reverse=True)[
        :limit
    ]
    ours = sorted(
        (r for r in rows if r[3].startswith(OURS) and not any(s in r[3] for s in SKIP)),
        reverse=True,
    )[:limit]
    busy = sum(r[1] for r in rows if "epoll" not in r[3])
    return "\n".join(
        [
            f"main thread busy (own time, epoll wait excluded): {busy / frames * 1e3:.3f} ms/frame",
            "",
            "most own time:",
            *_table(by_own, frames),
            "",
            "most cumulative time in Bidao's functions:",
            *_table(ours, frames),
        ]
    )


def run(args: argparse.Namespace, root: Path) -> None:
    """Import, run under cProfile, publish, stop, print."""
    profile = root / "gateway.prof"
    with children() as kids:
        port = start_mosquitto(kids, root / "mosquitto")
        http_port = free_port()
        config = gateway_config(root / "bidao.toml", root / "data", port, http_port, None)
        import_grid(
            config,
            root,
            units_csv(1),
            households_csv([(i, 0) for i in range(args.boxes)]),
            "",
        )
        started = time.monotonic()
        with (root / "gateway.log").open("ab") as log:
            proc = kids.start(
                "gateway",
                [
                    sys.executable,
                    "-m",
                    "cProfile",
                    "-o",
                    str(profile),
                    str(BIDAO),
                    "run",
                    "--config",
                    str(config),
                ],
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        assert proc.stdout is not None
        banner = proc.stdout.readline().strip()
        if not banner:
            raise SystemExit(f"the gateway printed no banner; see {root / 'gateway.log'}")
        gw = Gateway(proc, http_port, started, time.monotonic(), banner)
        time.sleep(1.0)
        acks0 = gw.acks()
        plan = PublishPlan(port, (0, args.boxes), (0, 0), args.rate, args.frames / args.rate, 2)
        sent = publisher_result(kids, start_publisher(kids, plan), args.frames / args.rate + 60)
        wait_acks(gw, acks0 + sent.sent)
        status = kids.stop(proc, timeout=60)
        if status != 0 or not profile.exists():
            raise SystemExit(f"the profiled gateway exited with {status} and no profile")
    print(
        f"{sent.sent:,} heartbeats at {args.rate:,.0f}/s from {args.boxes:,} boxes; "
        f"cProfile of the gateway's main thread (start-up and shutdown included)"
    )
    print(top_costs(profile, sent.sent, args.top))
    if args.keep:
        args.keep.write_bytes(profile.read_bytes())


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the options and run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--boxes", type=int, default=1000)
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--top", type=int, default=25, help="rows per table")
    parser.add_argument("--keep", type=Path, default=None, help="copy the profile here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            run(args, Path(tmp))
        except KeyboardInterrupt:
            raise SystemExit(130) from None


if __name__ == "__main__":
    main()
