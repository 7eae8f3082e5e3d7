"""The `bidao` console script: `bidao sim` runs the simulator without loading the gateway."""

from __future__ import annotations

import subprocess
import sys

PROBE = (
    "import sys\n"
    "from api.entry import main\n"
    "try:\n"
    "    code = main(['sim', 'box', '--help'])\n"
    "except SystemExit as exc:\n"
    "    code = exc.code\n"
    "loaded = sorted(m for m in ('gateway.application', 'fastapi') if m in sys.modules)\n"
    "print('LOADED', loaded, code)\n"
)


def test_bidao_sim_loads_the_simulator_alone() -> None:
    done = subprocess.run(  # our own entry point, fixed arguments
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=False
    )
    assert "press" in done.stdout  # the simulator's own help for `bidao sim box`
    assert done.stdout.strip().splitlines()[-1] == "LOADED [] 0"


def test_every_other_command_goes_to_the_gateway_cli() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from api.entry import main; raise SystemExit(main(['--help']))"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0
    assert "import" in done.stdout
    assert "sim" in done.stdout
