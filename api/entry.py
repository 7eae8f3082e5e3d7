"""The `bidao` console script.

`bidao sim ...` and `bidao demo ...` go straight to the simulator's own parsers
(device_sim/cli.py, device_sim/demo.py), which need none of the gateway in their process
(the demo runs `bidao run` as a child): loading the application, FastAPI and the settings
took seconds of CPU before a simulated box could press a key. Every other command goes to
api/cli.py.
Exit statuses are the same either way (130 Ctrl-C, 141 stdout closed by its reader).
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
from collections.abc import Sequence

EXIT_INTERRUPTED = 130
EXIT_PIPE_CLOSED = 128 + signal.SIGPIPE
_SIMULATOR = {"sim": "device_sim.cli", "demo": "device_sim.demo"}
"""Commands run by the simulator's own module (its `main(argv) -> int`)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `bidao` console script; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in _SIMULATOR:
        return _simulator(_SIMULATOR[args[0]], args[1:])
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


def _simulator(module: str, args: list[str]) -> int:
    sim_main = importlib.import_module(module).main

    try:
        code: int = sim_main(args)
        sys.stdout.flush()
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        quiet_stdout()
        return EXIT_PIPE_CLOSED
    return code
