"""Where a heartbeat's time goes inside the gateway: `bidao run` under cProfile.

Run `python -m bench.profile_heartbeat [--boxes 1000] [--frames 20000] [--rate 1000]`.
`--boxes` call boxes are imported with `bidao import`, the gateway runs as
`bidao run` with every thread under cProfile (the event loop and aiosqlite's
writer and reader threads) against its own mosquitto, a publisher process sends
`--frames` heartbeats round-robin at `--rate`/s (each one changing nothing a person sees:
same battery, same signal, device online), the gateway is stopped once all are acked, and
the functions with the most time are printed in ms per heartbeat, all threads together.
cProfile's own overhead inflates every figure, so compare the rows with each other rather
than with the unprofiled CPU per frame.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import runpy
import subprocess
import sys
import tempfile
import threading
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


WAITS = ("epoll", "'get' of '_queue", "'acquire' of '_thread", "time.sleep", "'wait' of")


def _waits(where: str) -> bool:
    """Whether a builtin only blocks (its own time is idle, not work)."""
    return any(w in where for w in WAITS)


def _table(rows: list[Row], frames: int) -> list[str]:
    lines = ["| function | cumulative ms/frame | own ms/frame | calls/frame |", "|---|---|---|---|"]
    lines += [
        f"| {where} | {cum / frames * 1e3:.3f} | {own / frames * 1e3:.3f} | {calls / frames:.2f} |"
        for cum, own, calls, where in rows
    ]
    return lines


Row = tuple[float, float, int, str]


def _rows(*profiles: Path) -> list[Row]:
    """(cumulative s, own s, calls, where) of every function in these profiles together."""
    stats = pstats.Stats(*map(str, profiles), stream=io.StringIO())
    rows = []
    for (filename, line, name), (_cc, calls, own, cum, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        where = filename.split("/site-packages/")[-1].split("/lib/python3.11/")[-1]
        where = where.split("/bench/", 1)[-1]
        rows.append((cum, own, calls, f"{where}:{line}({name})"))
    return rows


def _thread_busy(profile: Path, frames: int) -> str:
    rows = _rows(profile)
    busy = sum(r[1] for r in rows if not _waits(r[3]))
    top = max(rows, key=lambda r: r[0])[3] if rows else "-"
    return f"  {profile.stem}: {busy / frames * 1e3:.3f} ms/frame busy (under {top})"


def top_costs(profiles: Sequence[Path], frames: int, limit: int) -> str:
    """Busy time per thread, then two tables in ms per frame: the most own time anywhere
    (waits excluded), and the most cumulative time in Bidao's own functions."""
    rows = _rows(*profiles)
    by_own = sorted((r for r in rows if not _waits(r[3])), key=lambda r: r[1], reverse=True)[:limit]
    ours = sorted(
        (r for r in rows if r[3].startswith(OURS) and not any(s in r[3] for s in SKIP)),
        reverse=True,
    )[:limit]
    busy = sum(r[1] for r in rows if not _waits(r[3]))
    return "\n".join(
        [
            f"own time, all threads, waits excluded: {busy / frames * 1e3:.3f} ms/frame",
            *(_thread_busy(p, frames) for p in profiles),
            "",
            "most own time:",
            *_table(by_own, frames),
            "",
            "most cumulative time in Bidao's functions:",
            *_table(ours, frames),
        ]
    )


def launch(out_dir: Path, argv: Sequence[str]) -> int:
    """Run `bidao` with `argv` in this process, every thread under its own cProfile."""
    profiles: list[cProfile.Profile] = []

    def start_thread_profile(*_args: object) -> None:
        # First event in a new thread: install a real profiler for this thread instead.
        sys.setprofile(None)
        profile = cProfile.Profile()
        profiles.append(profile)
        profile.enable()

    threading.setprofile(start_thread_profile)
    main_profile = cProfile.Profile()
    sys.argv = [str(BIDAO), *argv]
    status = 0
    try:
        main_profile.runcall(runpy.run_path, str(BIDAO), run_name="__main__")
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
    threading.setprofile(None)
    main_profile.dump_stats(out_dir / "main.prof")
    for n, profile in enumerate(profiles):
        profile.dump_stats(out_dir / f"thread-{n}.prof")
    return status


def run(args: argparse.Namespace, root: Path) -> None:
    """Import, run under cProfile, publish, stop, print."""
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
                    "bench.profile_heartbeat",
                    "--launch",
                    str(root),
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
        plan = PublishPlan(
            port, (0, args.boxes), (0, 0), args.rate, args.frames / args.rate, 2, args.pick
        )
        sent = publisher_result(kids, start_publisher(kids, plan), args.frames / args.rate + 60)
        wait_acks(gw, acks0 + sent.sent)
        status = kids.stop(proc, timeout=60)
        profiles = sorted(root.glob("*.prof"))
        if status != 0 or not profiles:
            raise SystemExit(f"the profiled gateway exited with {status} and no profile")
    print(
        f"{sent.sent:,} heartbeats at {args.rate:,.0f}/s from {args.boxes:,} boxes ({args.pick}); "
        f"cProfile of every gateway thread (start-up and shutdown included)"
    )
    print(top_costs(profiles, sent.sent, args.top))
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        for path in profiles:
            (args.keep / path.name).write_bytes(path.read_bytes())


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the options and run (or, as the profiled child, launch `bidao`)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--launch"]:
        raise SystemExit(launch(Path(argv[1]), argv[2:]))
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--boxes", type=int, default=1000)
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--pick", choices=("round", "random"), default="round", help="devices")
    parser.add_argument("--top", type=int, default=25, help="rows per table")
    parser.add_argument("--keep", type=Path, default=None, help="copy the .prof files here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            run(args, Path(tmp))
        except KeyboardInterrupt:
            raise SystemExit(130) from None


if __name__ == "__main__":
    main()
