"""`bidao demo` as a new user runs it from the README: the story, the dashboard, Ctrl-C.

The command runs as a subprocess of this virtualenv's `bidao` (what `scripts/run` executes),
over MQTT (the gateway's own mosquitto) and over a serial line. The test reads what the
terminal shows until the story is over, checks it against what the fake phone network
recorded and what the API says, signs in with the printed login over real HTTP, then
presses Ctrl-C and checks that every process the demo started is gone.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from firmware_protocol import IndicationKind
from firmware_protocol.indications import says

BIDAO = Path(sys.executable).with_name("bidao")  # the console script of this virtualenv
WAIT_S = 600.0
"""A hang guard for the whole story (two tickets, one climbing the chain) on a loaded machine."""
STOP_S = 90.0
"""A hang guard for Ctrl-C: the demo stops the gateway, its broker and the phones."""
README = Path(__file__).resolve().parents[2] / "README.md"
SECRETARY = "13800000001"
DEPUTY = "13800000002"
STORY_OVER = "故事讲完了"


@dataclass
class Terminal:
    """What the demo printed so far, read by a thread until the process closes stdout."""

    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)
    reader: threading.Thread | None = None

    def start(self) -> None:
        """Read stdout line by line in a thread of its own."""
        self.reader = threading.Thread(target=self._read, name="demo-terminal", daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self.changed:
                self.lines.append(line.rstrip("\n"))
                self.changed.notify_all()
        with self.changed:
            self.lines.append("")  # EOF marker for waiters
            self.changed.notify_all()

    @property
    def text(self) -> str:
        """Everything printed so far."""
        with self.changed:
            return "\n".join(self.lines)

    def wait_for(self, found: Callable[[str], bool], what: str, timeout: float = WAIT_S) -> str:
        """Block until `found(all text so far)` holds; fail with the output otherwise."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while not found("\n".join(self.lines)):
                left = deadline - time.monotonic()
                if left <= 0 or (self.process.poll() is not None and self.lines[-1:] == [""]):
                    pytest.fail(f"not seen: {what}\n--- the terminal ---\n" + "\n".join(self.lines))
                self.changed.wait(min(left, 1.0))
            return "\n".join(self.lines)

    def close(self) -> None:
        """Wait for the reader to reach the end of the output."""
        if self.reader is not None:
            self.reader.join(STOP_S)
        if self.process.stdout is not None:
            self.process.stdout.close()


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[..., Terminal]]:
    """Start `bidao demo ARGS` as a person does in a terminal (a session of its own)."""
    started: list[Terminal] = []

    def start(*argv: str) -> Terminal:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BIDAO_")}
        with (tmp_path / "stderr.txt").open("w") as stderr:
            process = subprocess.Popen(
                [str(BIDAO), "demo", *argv],
                stdout=subprocess.PIPE,
                stderr=stderr,
                stdin=subprocess.DEVNULL,
                text=True,
                cwd=tmp_path,
                env=env,
                start_new_session=True,  # a terminal of its own: Ctrl-C goes to the whole group
            )
        terminal = Terminal(process)
        terminal.start()
        started.append(terminal)
        return terminal

    yield start
    for terminal in started:  # a failed test still leaves nothing behind
        if terminal.process.poll() is None:
            os.killpg(terminal.process.pid, signal.SIGTERM)
            terminal.process.wait(STOP_S)
        terminal.close()


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, start time) of a running process; None if gone (or a zombie, done)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    return int(fields[1]), fields[19]


def descendants(root: int) -> dict[int, tuple[str, str]]:
    """Every process below `root`: pid → (start time, command line)."""
    parents: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (found := _stat(int(entry.name))) is not None:
            parents[int(entry.name)] = found
    below: dict[int, tuple[str, str]] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, started) in parents.items():
            if ppid == parent and pid not in below:
                try:
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                except OSError:
                    continue
                below[pid] = (started, cmdline.decode(errors="replace"))
                frontier.append(pid)
    return below


def still_running(processes: dict[int, tuple[str, str]]) -> list[str]:
    """Those of `processes` still alive (the same pid and start time)."""
    left = []
    for pid, (started, cmdline) in processes.items():
        found = _stat(pid)
        if found is not None and found[1] == started:
            left.append(f"{pid}: {cmdline}")
    return left


def printed(text: str, label: str) -> str:
    """The value after `label` on the first line that has it."""
    found = re.search(re.escape(label) + r"\s*(\S+)", text)
    assert found is not None, f"{label!r} is not in the output:\n{text}"
    return found[1]


def _phones(url: str) -> list[dict[str, Any]]:
    reply = httpx.get(f"{url}/phones", timeout=30)
    reply.raise_for_status()
    records: list[dict[str, Any]] = reply.json()
    return records


def check_story(terminal: Terminal) -> dict[str, str]:
    """The story as the terminal shows it matches what the phones and the box got."""
    text = terminal.wait_for(lambda t: STORY_OVER in t, "the end of the story")
    values = {
        "url": printed(text, "值班台 dashboard:"),
        "login": printed(text, "登录 login:"),
        "password": printed(text, "密码 password:"),
        "phones": printed(text, "电话网 phone network:"),
        "data": printed(text, "数据 data:"),
    }
    # What each box showed and said, as its firmware speaks it, on the box's own line.
    lines = text.splitlines()
    for resident, kind in (
        ("张桂兰", IndicationKind.CALL_REGISTERED),
        ("张桂兰", IndicationKind.HELPER_ON_THE_WAY),
        ("张桂兰", IndicationKind.HELPER_ARRIVED),
        ("张桂兰", IndicationKind.RESOLVED),
        ("刘德福", IndicationKind.CALL_REGISTERED),
        ("刘德福", IndicationKind.NOBODY_REACHED),
    ):
        spoken = says(kind, "village_secretary")
        assert any(
            f"呼叫盒 box {resident}：{kind.name}" in line and f"{spoken.zh} / {spoken.en}" in line
            for line in lines
        ), f"{resident}'s box: {kind.name}"
    records = _phones(values["phones"])
    calls = [r for r in records if r["kind"] == "call" and not r["parent_sid"]]
    secretary = [r for r in calls if r["to"] == SECRETARY]
    # He answered the first call with 1, and did not answer the second resident's.
    assert secretary[0]["pressed"] == "1"
    assert any(r["statuses"][-1:] == ["no-answer"] for r in secretary[1:])
    deputy = [r for r in calls if r["to"] == DEPUTY]
    assert deputy, "the call went up the chain to the deputy"
    assert all(r["statuses"][-1:] == ["no-answer"] for r in deputy)
    sms_to_secretary = [r["body"] for r in records if r["kind"] == "sms" and r["to"] == SECRETARY]
    assert any("/r/" in body for body in sms_to_secretary), "his SMS with the link"

    # Every SMS every phone got is on the terminal word for word, and every call's words.
    def all_shown(shown: str) -> bool:
        now = _phones(values["phones"])
        said = [
            h["text"]
            for r in now
            if r["kind"] == "call"
            for h in r["transcript"]
            if h["kind"] == "say"
        ]
        bodies = [r["body"] for r in now if r["kind"] == "sms"]
        return all(line in shown for text in bodies + said for line in text.splitlines())

    text = terminal.wait_for(all_shown, "every SMS and call's words on the terminal", 120)
    for line in text.splitlines():
        if SECRETARY in line and "按键 pressed：1" in line:
            break
    else:
        pytest.fail("the terminal shows the secretary pressing 1")
    assert re.search(rf"王副书记.*{DEPUTY}|{DEPUTY}.*王副书记", text), "the deputy's call"
    assert "已评价 rated" in text
    return values


def check_dashboard(terminal: Terminal, values: dict[str, str]) -> None:
    """The printed URL serves the dashboard; the printed login signs in; tickets as told.

    Then what the demo says to do next: the secretary opens ticket 2 on the dashboard and
    presses 我来接单, and the second resident's box says help is on the way.
    """
    with httpx.Client(base_url=values["url"], follow_redirects=True, timeout=30) as browser:
        page = browser.get("/")
        assert (page.status_code, page.url.path) == (200, "/signin")
        assert 'name="password"' in page.text
        signed = browser.post(
            "/signin", data={"login": values["login"], "password": values["password"]}
        )
        assert (signed.status_code, signed.url.path) == (200, "/dash"), signed.text
        listing = browser.get("/api/v1/tickets", params={"days": 1})
        assert listing.status_code == 200, listing.text
        tickets = {t["id"]: t for t in listing.json()["items"]}
        assert (tickets[1]["status"], tickets[1]["rating"]) == ("rated", "up")
        assert (tickets[2]["status"], tickets[2]["escalated"]) == ("open", True)
        assert (tickets[1]["resident"], tickets[2]["resident"]) == ("张桂兰", "刘德福")
        ticket = browser.get("/dash/tickets/2")
        assert ticket.status_code == 200
        assert "刘德福" in ticket.text
        assert "我来接单" in ticket.text
        accepted = browser.post("/dash/tickets/2", data={"action": "accept"})
        assert accepted.status_code == 200, accepted.text
    terminal.wait_for(
        lambda text: "呼叫盒 box 刘德福：HELPER_ON_THE_WAY" in text, "his box hears it is taken"
    )


def ctrl_c(terminal: Terminal, started: dict[int, tuple[str, str]], times: int = 1) -> list[str]:
    """Ctrl-C as a terminal sends it; those of the processes the demo started that remain."""
    process = terminal.process
    for _ in range(times):
        os.killpg(process.pid, signal.SIGINT)
    assert process.wait(STOP_S) == 0, terminal.text
    terminal.close()
    return still_running(started)


def started_by(terminal: Terminal) -> tuple[dict[int, tuple[str, str]], list[str]]:
    """The processes below the demo now, and the kinds among them (gateway, mosquitto)."""
    started = descendants(terminal.process.pid)
    kinds = []
    for _, cmd in started.values():
        if "mosquitto" in cmd:
            kinds.append("mosquitto")
        elif "bidao" in cmd and " run " in f"{cmd} ":
            kinds.append("gateway")
    return started, sorted(kinds)


def _normalise(line: str) -> str:
    """A line without what differs between runs: times, ports, passwords, links, folders."""
    line = re.sub(r"\b\d\d:\d\d:\d\d\b", "HH:MM:SS", line)
    line = re.sub(r"\b\d{4}-\d\d-\d\d \d\d:\d\d\b", "DATE", line)
    line = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", line)
    line = re.sub(r"/r/[0-9A-Za-z._-]+", "/r/LINK", line)
    line = re.sub(r"(密码 password:)\s*\S+", r"\1 PASSWORD", line)
    line = re.sub(r"(数据 data:)\s*\S+", r"\1 FOLDER", line)
    line = re.sub(r"/\S*/bidao\b", "bidao", line)
    line = re.sub(r"\s+", " ", line)
    return line.strip()


def readme_excerpt() -> list[str]:
    """The terminal excerpt in the README's "Two commands" section (`...` skips lines)."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Two commands") : text.index("### Closing the loop")]
    block = re.search(r"```text\n(.*?)```", section, re.DOTALL)
    assert block is not None, "the README shows what the terminal shows"
    return [line for line in block[1].splitlines() if line.strip() and line.strip() != "..."]


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_the_demo_over_mqtt_tells_the_story_serves_the_dashboard_and_stops_clean(
    launch: Callable[..., Terminal], tmp_path: Path
) -> None:
    terminal = launch("--pace", "0")
    values = check_story(terminal)
    assert "MQTT" in terminal.text
    shown = [_normalise(line) for line in terminal.text.splitlines()]
    for line in readme_excerpt():
        assert _normalise(line) in shown, f"a README line not on the terminal: {line}"
    check_dashboard(terminal, values)
    started, kinds = started_by(terminal)
    assert kinds == ["gateway", "mosquitto"], started
    left = ctrl_c(terminal, started)
    assert left == [], left
    assert not Path(values["data"]).exists(), "the temporary folder is removed"
    assert "已全部停止" in terminal.text
    assert (tmp_path / "stderr.txt").read_text() == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stderr.txt"]  # nothing in the cwd


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_the_demo_over_a_serial_line_keeps_its_folder_and_survives_two_ctrl_c(
    launch: Callable[..., Terminal], tmp_path: Path
) -> None:
    data = tmp_path / "demo-data"
    terminal = launch("--pace", "0", "--transport", "serial", "--data-dir", str(data))
    values = check_story(terminal)
    assert "socket://127.0.0.1:" in terminal.text
    assert Path(values["data"]) == data
    check_dashboard(terminal, values)
    started, kinds = started_by(terminal)
    assert kinds == ["gateway"], started
    left = ctrl_c(terminal, started, times=2)  # impatient: the second leaves no orphan either
    assert left == [], left
    assert (data / "gateway" / "bidao.db").exists(), "a given folder is kept"
    assert (tmp_path / "stderr.txt").read_text() == ""


def test_scripts_run_runs_the_demo_and_the_readme_shows_it() -> None:
    run = (README.parent / "scripts" / "run").read_text()
    assert run.index("scripts/bootstrap") < run.index('exec .venv/bin/bidao demo "$@"')
    assert readme_excerpt(), "an excerpt of the terminal"


def test_demo_help_and_bad_options_are_clear() -> None:
    shown = subprocess.run(
        [str(BIDAO), "demo", "--help"], capture_output=True, text=True, check=False, timeout=120
    )
    assert shown.returncode == 0
    assert "--pace" in shown.stdout
    assert "--transport" in shown.stdout
    bad = subprocess.run(
        [str(BIDAO), "demo", "--pace", "-1"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    assert "--pace" in bad.stderr


def _using(folder: Path) -> list[str]:
    """Processes whose command line names `folder` (the gateway, its broker, a CLI command)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, NotADirectoryError):
            continue
        if entry.name.isdigit() and str(folder) in cmdline:
            found.append(f"{entry.name}: {cmdline}")
    return found


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_ctrl_c_while_it_is_starting_leaves_nothing_behind(
    launch: Callable[..., Terminal], tmp_path: Path
) -> None:
    data = tmp_path / "demo-data"
    terminal = launch("--pace", "0", "--data-dir", str(data))
    terminal.wait_for(lambda text: "正在启动" in text, "the demo starting")
    os.killpg(terminal.process.pid, signal.SIGINT)
    assert terminal.process.wait(STOP_S) == 0, terminal.text
    terminal.close()
    assert terminal.text.rstrip().endswith("已全部停止。 / Everything stopped.")
    assert _using(data) == []
    assert (tmp_path / "stderr.txt").read_text() == ""


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_taken_port_is_one_clear_line_and_nothing_is_left(
    launch: Callable[..., Terminal], tmp_path: Path
) -> None:
    data = tmp_path / "demo-data"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        terminal = launch("--pace", "0", "--http-port", str(port), "--data-dir", str(data))
        assert terminal.process.wait(WAIT_S) == 1, terminal.text
    terminal.close()
    complaint = (tmp_path / "stderr.txt").read_text()
    assert complaint.startswith("bidao demo: the gateway stopped at start:")
    assert f"cannot listen for HTTP on 127.0.0.1:{port}" in complaint
    assert "Traceback" not in complaint + terminal.text
    assert _using(data) == []


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_gateway_that_dies_is_said_and_its_broker_does_not_outlive_it(
    launch: Callable[..., Terminal], tmp_path: Path
) -> None:
    terminal = launch("--no-story", "--transport", "mqtt")
    terminal.wait_for(lambda text: "一切就绪" in text, "everything set up")
    started, kinds = started_by(terminal)
    assert kinds == ["gateway", "mosquitto"], started
    gateway = next(pid for pid, (_, cmd) in started.items() if " run " in f"{cmd} ")
    os.kill(gateway, signal.SIGKILL)
    assert terminal.process.wait(STOP_S) == 1, terminal.text
    terminal.close()
    complaint = (tmp_path / "stderr.txt").read_text()
    assert complaint.startswith("bidao demo: 网关意外停止（退出码SIGKILL）"), complaint
    assert "Bidao gateway running" in complaint  # the end of its log
    assert still_running(started) == []
