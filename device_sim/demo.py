"""`bidao demo`: the whole promise on one computer, told in the terminal and on the dashboard.

It sets up what a scenario's stage sets up (`device_sim.scenario.Stage`): a gateway of its own
(`bidao run`, in real time) with the mosquitto it starts itself when the binary is installed,
or with the boxes on a serial line (socket://) when it is not; the fake phone network; the
village of `device_sim.demo_village`, two of whose call boxes it plays. It adds a dashboard
login (the village secretary), tells a short story, then keeps running until Ctrl-C.

Every line it prints is what happened, as it happened, seen from the boxes (a key pressed,
the ACK, what the box shows and says), the phones (each SMS, and each call as the phone
lived it) and the gateway (`bidao ticket N`); the lines that start with ▶ say what the demo
does next, and ✓ what it then saw. Ctrl-C or SIGTERM stops the story, the boxes, the gateway
(and its broker), the serial line and the phone network, removes a temporary folder, and
exits 0; a second Ctrl-C only says it is still stopping. Words: locales/demo_*.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import shutil
import signal
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from device_sim import phones_view as view
from device_sim.demo_village import (
    CHEN,
    DEMO_VILLAGE,
    DEPUTY,
    LIU,
    LIU_CHAIN,
    PLACE,
    RESIDENTS,
    SECRETARY,
    VILLAGE_CODE,
    ZHANG,
    counts,
)
from device_sim.device import SimulatedDevice, box_says
from device_sim.locales import demo_en, demo_zh_cn
from device_sim.scenario import (
    Check,
    Report,
    Run,
    Stage,
    StageError,
    StageOptions,
    Transport,
    bidao_command,
    both,
    mosquitto_binary,
    report_link,
    resolve_on_page,
    ticket_says,
)
from device_sim.village_seed import DEPUTY_PHONE, SECRETARY_PHONE
from firmware_protocol import Indication, IndicationKind, Key

CALL_RETRY_S = 10
"""An unanswered call is placed again after this long (the gateway's default: a minute)."""
DEFAULT_PACE_S = 3.0
STEP_TIMEOUT_S = 180.0
"""How long the story waits for what it expects before it says it was not seen."""
WATCH_S = 0.1
"""How often the phone network's records are looked at."""
LOGIN = "li"
NOTE = demo_zh_cn.WORDS["note"]
CALL_OVER = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})
SMS_LOST = frozenset({"undelivered", "failed"})
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_PIPE_CLOSED = 128 + signal.SIGPIPE
"""Its reader closed stdout (`bidao demo | head`): everything stopped, quietly."""


LANGUAGES = (demo_zh_cn.WORDS, demo_en.WORDS)
"""Chinese first, English second."""


def words(key: str, **values: object) -> tuple[str, str]:
    """(Chinese, English) of one phrase."""
    zh, en = (language[key].format(**values) for language in LANGUAGES)
    return zh, en


def both_words(key: str, **values: object) -> str:
    """A phrase in Chinese, then English."""
    return " / ".join(words(key, **values))


def label(key: str) -> str:
    """A label in Chinese, then English: "值班台 dashboard"."""
    return " ".join(words(key))


def tell(line: str, *, error: bool = False) -> None:
    """One line on the terminal (or on stderr), at once."""
    stream = sys.stderr if error else sys.stdout
    with contextlib.suppress(BrokenPipeError):  # nobody reads any more: nothing to say
        stream.write(line + "\n")
        stream.flush()


class StoryError(Exception):
    """Something the story waited for was not seen in time."""


class GatewayStoppedError(Exception):
    """The gateway stopped by itself."""


@dataclass
class DemoOptions:
    """How `bidao demo` runs."""

    transport: Literal["auto", "mqtt", "serial"] = "auto"
    data_dir: Path | None = None
    http_port: int = 0
    pace_s: float = DEFAULT_PACE_S
    story: bool = True
    step_timeout_s: float = STEP_TIMEOUT_S


class DemoStage(Stage):
    """A stage whose boxes are named after their residents, every line stamped with the time."""

    def __init__(self, options: StageOptions, zone: ZoneInfo) -> None:
        super().__init__(options)
        self.zone = zone
        self._residents = {r.box: r.name for r in RESIDENTS}
        self.phone_watch: PhoneWatch | None = None
        """Set once the village's names are known."""

    def catch_up(self) -> None:
        """Say what the boxes and phones got that was not said yet (before the next line)."""
        self.show_boxes()
        if self.phone_watch is not None:
            self.phone_watch.look()

    def event(self, who: str, text: str) -> None:
        """One thing that happened, with the time it was seen."""
        moment = datetime.fromtimestamp(time.time(), self.zone).strftime("%H:%M:%S")
        lines = text.splitlines() or [""]
        self.say(f"{moment}  {who}：{lines[0]}")
        for line in lines[1:]:
            self.say(f"          {line}")

    def did(self, who: str, text: str) -> None:
        """Something the demo did or asked the gateway, after what was seen before it."""
        self.catch_up()
        self.event(who, text)

    def narrate(self, key: str, **values: object) -> None:
        """What the demo does next: Chinese, then English."""
        zh, en = words(key, **values)
        self.catch_up()
        self.say("")
        self.say(f"▶ {zh}")
        self.say(f"  {en}")

    def seen(self, key: str, **values: object) -> None:
        """What the demo waited for, once seen."""
        self.catch_up()
        self.say(f"✓ {both_words(key, **values)}")

    def _box(self, box: SimulatedDevice) -> str:
        return f"{label('box')} {self._residents.get(box.device_id, box.device_id)}"

    def box_pressed(self, box: SimulatedDevice, key: Key, *, long: bool) -> None:
        """Say the key pressed on a resident's box."""
        held = f" ({label('long')})" if long else ""
        self.event(self._box(box), f"{label('press')} {key.name}{held}")

    def box_acked(self, box: SimulatedDevice) -> None:
        """Say that the gateway acknowledged a frame of the box."""
        self.event(self._box(box), label("acked"))

    def box_heard(self, box: SimulatedDevice, indication: Indication) -> None:
        """Say what the box shows and says."""
        self.event(self._box(box), box_says(indication))


class PhoneWatch:
    """Prints each SMS and call the fake network takes, as it happens, as the phone lived it."""

    def __init__(self, stage: DemoStage, people: dict[str, view.Person]) -> None:
        self._stage = stage
        self._people = people
        self._heard: dict[str, int] = {}
        """Per message or call: how many of its transcript lines were printed."""
        self._over: set[str] = set()

    def look(self) -> None:
        """Print what is new since the last look."""
        records = self._stage.phones.snapshot()
        for entry in view.entries(records, self._people, self._stage.zone):
            self._show(entry)

    def _show(self, e: dict[str, Any]) -> None:
        sid, status = str(e["sid"]), str(e["status"])
        to = view.who(e["to"], e)
        if e["channel"] == "sms":
            head = f"{view.words('sms')} → {to}"
            if sid not in self._heard:
                self._heard[sid] = 0
                self._stage.event(head, str(e["text"]))
            if status in SMS_LOST and sid not in self._over:
                self._over.add(sid)
                self._stage.event(head, view.state_label(e))
            return
        head = f"{view.words('leg' if e['parent_sid'] else 'call')} → {to}"
        if sid not in self._heard:
            self._heard[sid] = 0
            self._stage.event(head, view.words("initiated"))
        machine = str(e["answered_by"]).startswith("machine")
        for heard in e["transcript"][self._heard[sid] :]:
            self._heard[sid] += 1
            self._stage.event(head, view.transcript_line(heard, machine))
        if status in CALL_OVER and sid not in self._over:
            self._over.add(sid)
            self._stage.event(head, view.state_label(e))


def _page(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback
        response.read()
        return int(response.status)


def _command(*argv: str) -> str:
    """A `bidao` command line a person can copy (relative to the working folder if under it)."""
    program = Path(bidao_command()[0])
    with contextlib.suppress(ValueError):
        program = program.relative_to(Path.cwd())
    return " ".join([str(program), *argv])


class Demo:
    """Everything `bidao demo` starts, the story it tells, and how it stops."""

    def __init__(self, options: DemoOptions, transport: Transport) -> None:
        self.options = options
        self._temporary = options.data_dir is None
        root = options.data_dir or Path(tempfile.mkdtemp(prefix="bidao-demo-"))
        stage_options = StageOptions(
            transport=transport,
            step_timeout_s=options.step_timeout_s,
            data_dir=root.resolve(),
            village=DEMO_VILLAGE,
            http_port=options.http_port,
            notify_toml=f"call_retry_after_s = {CALL_RETRY_S}",
        )
        zone = ZoneInfo(view.DEFAULT_ZONE)
        self.stage = DemoStage(stage_options, zone)
        self.run = Run(self.stage, Report("demo"))
        self.password = secrets.token_urlsafe(12)
        self.story_told = True
        self._open_ticket: int | None = None
        self._people: dict[str, view.Person] = {}
        self._watch: asyncio.Task[None] | None = None

    @property
    def dashboard(self) -> str:
        """The dashboard's address."""
        return f"{self.stage.http_url}/"

    async def play(self) -> None:
        """Start everything, tell the story, keep running (until cancelled or the gateway stops)."""
        stage = self.stage
        stage.say(both_words("title"))
        stage.say(both_words("starting"))
        await stage.start()
        await self._add_login()
        root = stage.root
        self._people = {
            **view.load_names(root / "contacts.csv"),
            **view.load_names(root / "households.csv"),
        }
        stage.phone_watch = PhoneWatch(stage, self._people)
        self._watch = asyncio.create_task(self._watch_phones(stage.phone_watch), name="demo-phones")
        self._introduce()
        if self.options.story:
            try:
                await self._story()
            except StoryError as exc:
                self.story_told = False
                stage.catch_up()
                stage.say(f"✗ {exc}")
                stage.say(both_words("story_failed"))
            else:
                stage.catch_up()
                stage.say("")
                stage.say(both_words("over"))
        else:
            stage.say("")
            stage.say(both_words("ready"))
        self._next_steps()
        # A subprocess.Popen has no awaitable exit: look twice a second.
        while (code := stage.gateway_status()) is None:  # noqa: ASYNC110
            await asyncio.sleep(0.5)
        said = stage.gateway_log_tail().strip()
        status = str(code) if code >= 0 else signal.Signals(-code).name
        raise GatewayStoppedError(both_words("gateway_died", code=status) + "\n" + said)

    async def stop(self) -> None:
        """Stop everything that was started; remove a temporary folder. Safe to call twice."""
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)
        await self.stage.stop()
        if self._temporary:
            root = self.stage.root
            await asyncio.to_thread(lambda: shutil.rmtree(root, ignore_errors=True))

    async def _add_login(self) -> None:
        """The village secretary's login, with a new password (a kept folder may have it)."""
        secret = self.password + "\n"
        argv = ["user", "add", LOGIN, "--role", "secretary", "--unit", VILLAGE_CODE]
        argv += ["--contact", SECRETARY_PHONE, "--name", SECRETARY, "--password-stdin"]
        added = await asyncio.to_thread(lambda: self.stage.bidao(*argv, stdin=secret))
        if added.returncode != 0:
            await self.stage.run_bidao("user", "passwd", LOGIN, "--password-stdin", stdin=secret)

    @staticmethod
    async def _watch_phones(watch: PhoneWatch) -> None:
        while True:
            watch.look()
            await asyncio.sleep(WATCH_S)

    def _line(self, key: str, value: object, note: str = "") -> None:
        self.stage.say(f"  {label(key)}: {value}" + (f"  ({note})" if note else ""))

    def _introduce(self) -> None:
        stage = self.stage
        if stage.serial is not None:
            link = both_words("link_serial", url=stage.serial.url)
        else:
            link = both_words("link_mqtt", port=stage.mqtt_port)
        self._line("gateway", stage.http_url, f"bidao run; {link}")
        self._line("phones", stage.phones.url, both_words("phones_note"))
        kept = "data_temporary" if self._temporary else "data_kept"
        self._line("data", stage.root, both_words(kept))
        self._line("village", both_words("village_summary", place=PLACE, **counts()))
        self._line("setting", both_words("setting_retry", seconds=CALL_RETRY_S))
        self._line("dashboard", self.dashboard)
        self._login_line()
        stage.say(both_words("watch_along"))

    def _login_line(self) -> None:
        note = both_words("login_note", name=SECRETARY)
        self.stage.say(
            f"  {label('login')}: {LOGIN}  {label('password')}: {self.password}  ({note})"
        )

    async def _until(self, check: Check, key: str, **values: object) -> str:
        """What `check` saw; StoryError naming what was awaited if nothing within the bound."""
        seen, _ = await self.run.watch(check)
        if seen is None:
            seconds = f"{self.options.step_timeout_s:g}"
            said = zip(LANGUAGES, words(key, **values), strict=True)
            lines = (lang["not_seen"].format(seconds=seconds, what=what) for lang, what in said)
            raise StoryError(" / ".join(lines))
        return seen

    async def _pause(self) -> None:
        if self.options.pace_s > 0:
            await asyncio.sleep(self.options.pace_s)

    async def _press(self, box: SimulatedDevice, key: Key, *, long: bool = False) -> None:
        """Press a key and wait for the box to get its ACK."""
        acked = len(box.acked_positions)
        await self.stage.press(key, long=long, box=box)
        await self._until(self.run.acked(box, acked + 1), "acked")

    async def _story(self) -> None:
        await self._pause()
        await self._story_one()
        await self._pause()
        await self._story_two()

    async def _story_one(self) -> None:
        """张桂兰 presses green; the secretary takes it, comes, resolves it; she is satisfied."""
        stage, run = self.stage, self.run
        box = stage.boxes[0]
        stage.narrate("s1_press", name=ZHANG.name, address=ZHANG.address)
        await self._press(box, Key.GREEN_CALL)
        accepted = both(
            lambda: "1" if stage.accepted_call(SECRETARY_PHONE) else None,
            run.box_heard(IndicationKind.HELPER_ON_THE_WAY, box=box),
        )
        await self._until(accepted, "ok_on_the_way", helper=SECRETARY, name=ZHANG.name)
        stage.seen("ok_on_the_way", helper=SECRETARY, name=ZHANG.name)
        ticket = _latest(box, IndicationKind.HELPER_ON_THE_WAY)
        await self._pause()

        stage.narrate("s1_arrive", helper=SECRETARY, name=ZHANG.name)
        await self._press(box, Key.GREEN_CALL, long=True)
        await self._until(
            run.box_heard(IndicationKind.HELPER_ARRIVED, box=box), "ok_arrived", helper=SECRETARY
        )
        stage.seen("ok_arrived", helper=SECRETARY)
        await self._pause()

        url = await self._until(
            report_link(stage, SECRETARY_PHONE, ticket), "s1_link", helper=SECRETARY
        )
        stage.narrate("s1_link", helper=SECRETARY)
        browser = f"{label('browser')} {SECRETARY}"
        opened = await asyncio.to_thread(_page, url)
        stage.did(browser, f"{label('opens')} {url}: {label('page')} {opened}")
        stage.did(browser, both_words("submits", note=NOTE))
        status, resolved = await asyncio.to_thread(resolve_on_page, url, NOTE)
        if resolved:
            stage.did(browser, f"{label('page')} {status} {label('page_resolved')}")
        await self._until(
            run.box_heard(IndicationKind.RESOLVED, box=box),
            "ok_resolved",
            ticket=ticket,
            name=ZHANG.name,
        )
        stage.seen("ok_resolved", ticket=ticket, name=ZHANG.name)
        await self._pause()

        stage.narrate("s1_rate", name=ZHANG.name)
        await self._press(box, Key.THUMBS_UP)
        line = await self._until(ticket_says(stage, ticket, "已评价"), "ok_rated", ticket=ticket)
        stage.did(label("gateway"), line)
        stage.seen("ok_rated", ticket=ticket)

    async def _story_two(self) -> None:
        """刘德福 presses green; nobody answers; the call climbs the chain; it stays open."""
        stage, run = self.stage, self.run
        box = stage.boxes[1]
        people = [self._person(phone) for phone in LIU_CHAIN]
        stage.narrate("s2_phones", names="、".join(p["name"] for p in people))
        for phone, person in zip(LIU_CHAIN, people, strict=True):
            stage.phones.script(phone).behaviour = "no_answer"
            stage.did(label("phones"), f"{view.who(phone, person)} {label('wont_answer')}")
        await self._pause()

        stage.narrate("s2_press", name=LIU.name, address=LIU.address)
        await self._press(box, Key.GREEN_CALL)
        await self._until(
            run.box_heard(IndicationKind.CALL_REGISTERED, box=box),
            "s2_press",
            name=LIU.name,
            address=LIU.address,
        )
        ticket = _latest(box, IndicationKind.CALL_REGISTERED)
        values = {"secretary": SECRETARY, "ticket": ticket, "deputy": DEPUTY}
        await self._until(self._went_to_deputy, "ok_escalated", **values)
        stage.seen("ok_escalated", **values)
        await self._until(
            run.box_heard(IndicationKind.NOBODY_REACHED, box=box),
            "ok_exhausted",
            name=LIU.name,
            ticket=ticket,
        )
        line = await self._until(
            ticket_says(stage, ticket, "待接单"), "ok_exhausted", name=LIU.name, ticket=ticket
        )
        stage.did(label("gateway"), line)
        stage.seen("ok_exhausted", name=LIU.name, ticket=ticket)
        self._open_ticket = ticket

    def _went_to_deputy(self) -> str | None:
        calls = self.stage.phones.received
        unanswered = any(
            r.kind == "call" and r.statuses[-1:] == ["no-answer"] for r in calls(SECRETARY_PHONE)
        )
        called = any(r.kind == "call" for r in calls(DEPUTY_PHONE))
        return "escalated" if unanswered and called else None

    def _person(self, phone: str) -> dict[str, str]:
        """Name and role of a number, from the village's files."""
        found = self._people.get(view.phone_key(phone))
        return {"name": found.name, "role": found.role} if found else {"name": phone, "role": ""}

    def _next_steps(self) -> None:
        stage = self.stage
        root = stage.root
        say = stage.say
        say(f"  {label('dashboard')}: {self.dashboard}")
        self._login_line()
        ticket = self._open_ticket
        if ticket is not None:
            for line in words("next_accept", ticket=ticket, name=LIU.name):
                say(f"  {line}")
        if stage.serial is None:
            say(f"  {both_words('next_box', name=CHEN.name)}")
            device = f"--port {stage.mqtt_port} --device-id {CHEN.box} --key {CHEN.key.hex()}"
            state = f"--state-dir {root / 'sim'}"
            say(f"    {_command('sim', 'box', device, state, 'press', 'green')}")
        say(f"  {both_words('next_answer', name=SECRETARY)}")
        answer = f"{SECRETARY_PHONE} --behaviour answer --url {stage.phones.url}"
        say(f"    {_command('sim', 'phones', 'set', answer)}")
        say(f"  {both_words('next_received')}")
        names = f"--names {root / 'contacts.csv'} --names {root / 'households.csv'}"
        say(f"    {_command('sim', 'phones', 'received', '--url', stage.phones.url, names)}")
        say(f"  {both_words('next_tickets')}")
        say("    " + _command("tickets", "--config", str(stage.config)))


def _latest(box: SimulatedDevice, kind: IndicationKind) -> int:
    """The ticket of the latest indication of this kind the box got."""
    return next(i.ticket_ref for i in reversed(box.indications) if i.kind == kind)


def choose_transport(wanted: str) -> Transport:
    """MQTT when mosquitto is installed (auto), else the serial line; StageError if impossible."""
    found = mosquitto_binary() is not None
    if wanted == "mqtt" and not found:
        raise StageError(
            "mosquitto is not installed (Debian: apt-get install mosquitto); "
            "--transport serial needs no broker"
        )
    if wanted == "serial" or not found:
        return "serial"
    return "mqtt"


async def run_demo(options: DemoOptions) -> int:
    """Run the demo until SIGINT or SIGTERM; its exit status."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    demo: Demo | None = None

    def stop_soon() -> None:
        if stopping.is_set():
            tell(both_words("still_stopping"))
        stopping.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop_soon)
    code = EXIT_OK
    try:
        demo = Demo(options, choose_transport(options.transport))
        playing = asyncio.create_task(demo.play(), name="demo")
        waiting = asyncio.create_task(stopping.wait(), name="demo-stop")
        await asyncio.wait({playing, waiting}, return_when=asyncio.FIRST_COMPLETED)
        for task in (playing, waiting):
            task.cancel()
        done = await asyncio.gather(playing, waiting, return_exceptions=True)
        failure = done[0]
        if isinstance(failure, BrokenPipeError):
            code = EXIT_PIPE_CLOSED
        elif isinstance(failure, (StageError, GatewayStoppedError, OSError, TimeoutError)):
            tell(f"bidao demo: {failure}", error=True)
            code = EXIT_FAILED
        elif isinstance(failure, BaseException) and not isinstance(failure, asyncio.CancelledError):
            raise failure
        tell("\n" + both_words("stopping"))
    except StageError as exc:
        tell(f"bidao demo: {exc}", error=True)
        return EXIT_USAGE
    finally:
        if demo is not None:
            await demo.stop()
            tell(both_words("stopped"))
            if not demo.story_told:
                code = code or EXIT_FAILED
        # Stopped: a late Ctrl-C must not turn the exit status into 130.
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
            signal.signal(sig, signal.SIG_IGN)
    return code


def _pace(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 3600:
        raise argparse.ArgumentTypeError("must be seconds from 0 to 3600")
    return value


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError("must be a port from 0 (a free one) to 65535")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    """The parser of `bidao demo`."""
    parser = argparse.ArgumentParser(
        prog="bidao demo",
        description="Start everything on free loopback ports (the gateway, its mosquitto or a "
        "serial line, the fake phone network, a seeded village, the dashboard), tell a short "
        "story in the terminal and on the dashboard, print the dashboard's address and a "
        "login, and keep running until Ctrl-C, which stops everything.",
    )
    parser.add_argument(
        "--transport",
        choices=["auto", "mqtt", "serial"],
        default="auto",
        help="how the boxes reach the gateway: MQTT through the mosquitto the gateway starts, "
        "or a serial line (socket://, no broker); auto: MQTT when mosquitto is installed",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="keep the gateway's files here (default: a temporary folder removed at exit)",
    )
    parser.add_argument(
        "--http-port", type=_port, default=0, help="the dashboard's port (default: a free one)"
    )
    parser.add_argument(
        "--pace",
        type=_pace,
        default=DEFAULT_PACE_S,
        help=f"seconds between the story's steps, to follow along (default {DEFAULT_PACE_S:g})",
    )
    parser.add_argument("--no-story", action="store_true", help="set everything up, tell no story")
    parser.add_argument(
        "--step-timeout",
        type=_pace,
        default=STEP_TIMEOUT_S,
        help="seconds the story waits for each thing it expects before it says it was not "
        f"seen (default {STEP_TIMEOUT_S:g})",
    )
    return parser


def main(argv: Sequence[str]) -> int:
    """Run `bidao demo`; its exit status (argparse exits 2 on bad arguments)."""
    args = build_parser().parse_args(argv)
    options = DemoOptions(
        transport=args.transport,
        data_dir=args.data_dir,
        http_port=args.http_port,
        pace_s=args.pace,
        story=not args.no_story,
        step_timeout_s=args.step_timeout,
    )
    return asyncio.run(run_demo(options))


__all__ = ["DemoOptions", "main", "run_demo"]
