"""`bench/ingest.py` end to end, small: its probe must keep up with the MQTT link it times."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def test_the_ingest_bench_counts_every_frame_of_the_pipeline(tmp_path: Path) -> None:
    argv = ["--frames", "600", "--devices", "20", "--rounds", "1", "--baseline-frames", "60"]
    done = subprocess.run(
        [sys.executable, "bench/ingest.py", *argv, "--dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    # The pipeline's figure exists only when every frame was stored, acked and PUBACKed.
    assert re.search(
        r"^round 1: bare paho +\d+ msg/s \| pipeline +\d+ frames/s", done.stdout, re.MULTILINE
    )
    assert re.search(
        r"^one commit per frame \(baseline\): +\d+ frames/s \(60 frames\)",
        done.stdout,
        re.MULTILINE,
    )
    assert "pipeline / bare paho: median" in done.stdout
