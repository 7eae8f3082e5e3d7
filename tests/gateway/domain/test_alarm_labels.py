"""What an alarm turned out to be: labelled real or false (and why) by the one who resolves it.

One decision at a time, as tests/gateway/domain/test_ticket_rules.py; its village and people.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from gateway.domain.tickets import (
    FALSE_OUTCOMES,
    OUTCOMES,
    OUTCOMES_OF,
    TICKET_KINDS,
    Label,
    NotAnAlarmError,
    Outcome,
    OutcomeError,
    Resolve,
    TicketError,
    TicketStatus,
    decide,
    is_false_alarm,
)
from tests.gateway.domain.test_ticket_rules import CTX, GRID_WORKER, HOUR, T0, ticket


def test_the_labels_say_real_or_false_and_each_kind_has_its_own() -> None:
    assert OUTCOMES[0] == "real"
    assert set(FALSE_OUTCOMES) == set(OUTCOMES) - {"real"}
    assert [o for o in OUTCOMES if is_false_alarm(o)] == list(FALSE_OUTCOMES)
    assert not is_false_alarm(None)
    assert set(OUTCOMES_OF) == set(TICKET_KINDS)
    assert OUTCOMES_OF["call"] == ()
    # Running water is never late rising; a leak while away is a leak.
    assert "late_rising" not in OUTCOMES_OF["leak"]
    assert "away" not in OUTCOMES_OF["leak"]


def test_resolving_an_alarm_with_its_outcome_labels_it_and_counts_it() -> None:
    before = replace(ticket(TicketStatus.ACCEPTED, owner=GRID_WORKER), kind="no_water")
    d = decide(before, Resolve(GRID_WORKER, "cli", outcome="late_rising"), CTX, T0 + HOUR)
    assert d.ticket.status == TicketStatus.RESOLVED
    assert d.ticket.outcome == "late_rising"
    labelled = [(e.kind, e.detail, e.contact_id) for e in d.events if e.kind == "labelled"]
    assert labelled == [("labelled", "late_rising", GRID_WORKER)]
    assert "labelled_false" in d.counts


def test_an_alarm_the_all_clear_resolved_is_labelled_afterwards_and_may_be_corrected() -> None:
    cleared = replace(
        ticket(TicketStatus.RESOLVED, owner=None, resolved=HOUR), kind="no_water", rating=None
    )
    first = decide(cleared, Label("away", GRID_WORKER, "cli"), CTX, T0 + 2 * HOUR)
    assert first.ticket.outcome == "away"
    assert first.ticket.status == TicketStatus.RESOLVED  # nothing else changes
    assert first.notifications == ()
    again = decide(first.ticket, Label("real", GRID_WORKER, "link"), CTX, T0 + 3 * HOUR)
    assert again.ticket.outcome == "real"
    assert "labelled_real" in again.counts


@pytest.mark.parametrize("status", [TicketStatus.ACCEPTED, TicketStatus.RESOLVED])
def test_a_call_is_never_labelled(status: TicketStatus) -> None:
    call = ticket(status, owner=GRID_WORKER, resolved=HOUR if status == "resolved" else None)
    with pytest.raises(NotAnAlarmError, match="is a call, not an alarm"):
        decide(call, Label("real", GRID_WORKER, "cli"), CTX, T0 + 2 * HOUR)
    if status == TicketStatus.ACCEPTED:
        with pytest.raises(NotAnAlarmError):
            decide(call, Resolve(GRID_WORKER, "cli", outcome="real"), CTX, T0 + 2 * HOUR)


def test_an_outcome_the_kind_cannot_have_or_no_outcome_at_all_is_refused() -> None:
    leak = replace(ticket(TicketStatus.ACCEPTED, owner=GRID_WORKER), kind="leak")
    with pytest.raises(OutcomeError, match="a leak alarm cannot be late_rising"):
        decide(leak, Resolve(GRID_WORKER, "cli", outcome="late_rising"), CTX, T0 + HOUR)
    bogus: Outcome = "asleep"  # type: ignore[assignment]
    with pytest.raises(OutcomeError, match="unknown outcome 'asleep'"):
        decide(leak, Resolve(GRID_WORKER, "cli", outcome=bogus), CTX, T0 + HOUR)
    done = decide(leak, Resolve(GRID_WORKER, "cli", outcome="meter_fault"), CTX, T0 + HOUR)
    assert done.ticket.outcome == "meter_fault"


def test_an_alarm_still_open_is_labelled_only_once_it_is_resolved() -> None:
    live = replace(ticket(TicketStatus.OPEN), kind="no_water")
    with pytest.raises(TicketError, match="label it when it is resolved"):
        decide(live, Label("real", GRID_WORKER, "cli"), CTX, T0 + HOUR)
