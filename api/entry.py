"""The `bidao` console script.

`bidao sim ...` goes straight to the simulator's own parser (device_sim/cli.py), which needs
none of the gateway: loading the application, FastAPI and the settings for it took seconds
of CPU before a simulated box could press a key. Every other command goes to api/cli.py.
Exit statuses are the same either way (130 Ctrl-C, 141 stdout closed by its reader).
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence

EXIT_INTERRUPTED = 130
EXIT_PIPE_CLOSED = 128 + signal.SIGPIPE


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `bidao` console script; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["sim"]:
        return _sim(args[1:])
    from api.cli import main as cli_main

    return cli_main(args)


def quiet_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's last flush cannot fail."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass  # stdout has no descriptor (captured in a test); nothing will flush to a pipe
    finally:
        os.close(devnull)


def _sim(args: list[str]) -> int:
    from device_sim.cli import main as sim_main

    try:
        code = sim_main(args)
        sys.stdout.flush()
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        quiet_stdout()
        return EXIT_PIPE_CLOSED
    return code
