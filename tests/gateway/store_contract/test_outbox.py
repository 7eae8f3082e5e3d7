"""The durable outbox: due order, claiming, throttling, merging, delivery, doubt after a crash."""

from __future__ import annotations

from dataclasses import replace

from alerts import Notification
from alerts.notification import URGENT
from gateway.store.ports import OutboxEntry, SentNotification, Store
from tests.gateway.store_contract.contract import (
    T0,
    Backend,
    by_id,
    contact_ids,
    pending_ids,
    seed_grid,
    sms,
)

LATER = T0 + 10_000


async def _enqueue(store: Store, *notifications: Notification) -> list[int]:
    """Write notifications one transaction each; their ids, in the order written."""
    ids: list[int] = []
    for i, n in enumerate(notifications):
        async with store.transaction() as uow:
            before = set(await pending_ids(uow))
            await uow.outbox.enqueue([n], T0 + i)
            (new,) = set(await pending_ids(uow)) - before
        ids.append(new)
    return ids


async def _entry(store: Store, notification_id: int) -> OutboxEntry:
    return next(e for e in await store.outbox.entries() if e.id == notification_id)


def by_entry_id(entries: list[OutboxEntry]) -> dict[int, OutboxEntry]:
    return {e.id: e for e in entries}


async def _sent(store: Store, notification_id: int, provider_id: str, at: float) -> None:
    async with store.transaction() as uow:
        await uow.outbox.mark_sending([notification_id], at)
        await uow.outbox.sent(
            notification_id, SentNotification("twilio", provider_id, "queued", "文本"), at
        )


async def test_enqueued_notifications_are_due_urgent_first_then_oldest(
    store: Store,
) -> None:
    a, b, c, d = (
        sms("13800000001"),
        sms("13800000002", priority=URGENT),
        sms("13800000003"),
        sms("13800000004", priority=URGENT),
    )
    ids = await _enqueue(store, a, b, c, d)
    async with store.transaction() as uow:
        due = await uow.outbox.due(LATER, 10, in_doubt=False)
        first_two = await uow.outbox.due(LATER, 2, in_doubt=False)
        assert await uow.outbox.due(LATER, 10, in_doubt=True) == []
    assert [r.id for r in due] == [ids[1], ids[3], ids[0], ids[2]]
    assert [r.notification for r in due] == [b, d, a, c]
    assert [(r.attempts, r.claimed_at, r.origin_kind) for r in due] == [(0, None, None)] * 4
    assert [r.id for r in first_two] == [ids[1], ids[3]]
    next_at = await store.outbox.next_at()
    assert next_at is not None
    assert next_at <= T0


async def test_a_notification_reads_back_as_written(store: Store) -> None:
    written = Notification(
        channel="voice",
        recipient="+447700900123",
        template="ticket_opened",
        params={"name": "张桂兰", "place": "桥元村三组", "quote": 'it\'s "fine"'},
        language="en",
        priority=URGENT,
    )
    (notification_id,) = await _enqueue(store, written)
    assert await store.outbox.with_members(notification_id) == (written, [])
    assert await store.outbox.with_members(notification_id + 1000) is None
    assert await store.outbox.next_at() is not None


async def test_an_empty_outbox_has_nothing_due(store: Store) -> None:
    assert await store.outbox.next_at() is None
    async with store.transaction() as uow:
        await uow.outbox.enqueue([], T0)
        assert await pending_ids(uow) == []


async def test_a_claimed_notification_uses_an_attempt_and_is_not_due_while_sending(
    store: Store,
) -> None:
    (n,) = await _enqueue(store, sms())
    async with store.transaction() as uow:
        await uow.outbox.mark_sending([n], T0 + 5)
        assert await pending_ids(uow) == []
        # Claiming again while it is out does not use another attempt.
        await uow.outbox.mark_sending([n], T0 + 6)
    assert await store.outbox.next_at() is None
    entry = await _entry(store, n)
    assert (entry.status, entry.attempts) == ("sending", 1)
    async with store.transaction() as uow:
        await uow.outbox.retry(n, T0 + 65, "timeout", T0 + 7, in_doubt=False)
        assert await uow.outbox.due(T0 + 64, 10, in_doubt=False) == []
        (row,) = await uow.outbox.due(T0 + 65, 10, in_doubt=False)
    assert (row.id, row.attempts, row.claimed_at) == (n, 1, T0 + 5)
    assert await store.outbox.next_at() == T0 + 65
    async with store.transaction() as uow:
        await uow.outbox.mark_sending([n], T0 + 65)
    assert (await _entry(store, n)).attempts == 2


async def test_deferring_holds_a_notification_back_without_using_an_attempt(
    store: Store,
) -> None:
    first, second = await _enqueue(store, sms("13800000001"), sms("13800000002"))
    async with store.transaction() as uow:
        await uow.outbox.defer([first], T0 + 300)
        assert await pending_ids(uow, T0 + 299) == [second]
        due = await uow.outbox.due(T0 + 300, 10, in_doubt=False)
    assert sorted(r.id for r in due) == sorted([first, second])
    assert next(r for r in due if r.id == first).attempts == 0


async def test_a_merged_leader_carries_its_members(store: Store) -> None:
    messages = [sms("13800000001", f"t{i}", params={"i": str(i)}) for i in range(4)]
    leader, *members = await _enqueue(store, *messages)
    async with store.transaction() as uow:
        await uow.outbox.merge(leader, members[:2], T0 + 10)
        assert await pending_ids(uow) == [leader, members[2]]
        carried = await uow.outbox.merged_members([leader, members[2]])
        assert await uow.outbox.merged_members([]) == {}
    assert carried == {leader: messages[1:3], members[2]: []}
    assert await store.outbox.with_members(leader) == (messages[0], messages[1:3])
    entries = by_entry_id(await store.outbox.entries())
    assert [entries[m].merged_into for m in members] == [leader, leader, None]
    async with store.transaction() as uow:
        await uow.outbox.mark_sending([leader], T0 + 11)
        await uow.outbox.sent(leader, SentNotification("twilio", "SM1", "queued", "合并"), T0 + 11)
        record = await uow.outbox.delivery(leader, "SM1", "delivered", T0 + 20)
    assert record is not None
    assert record.merged


async def test_a_sent_notification_is_done_and_its_provider_id_known(
    store: Store,
) -> None:
    n, other = await _enqueue(store, sms("13800000001"), sms("13800000002"))
    await _sent(store, n, "SM0001", T0 + 5)
    async with store.transaction() as uow:
        assert await pending_ids(uow) == [other]
        assert await uow.outbox.known_provider_ids(["SM0001", "SM9999"]) == {"SM0001"}
        assert await uow.outbox.known_provider_ids([]) == set()
    entry = await _entry(store, n)
    assert (entry.status, entry.provider_id, entry.delivery, entry.sent_text) == (
        "sent",
        "SM0001",
        "queued",
        "文本",
    )


async def test_recent_sends_are_the_handovers_to_one_number_on_one_channel(
    store: Store,
) -> None:
    voice = replace(sms("13800000001"), channel="voice")
    a, b, c, _ = await _enqueue(
        store, sms("13800000001"), sms("13800000001"), voice, sms("13800000001")
    )
    await _sent(store, a, "SM1", T0 + 10)
    async with store.transaction() as uow:
        await uow.outbox.mark_sending([b], T0 + 20)
        await uow.outbox.mark_sending([c], T0 + 30)
    async with store.transaction() as uow:
        assert await uow.outbox.recent_sends("13800000001", "sms", T0) == [T0 + 10, T0 + 20]
        assert await uow.outbox.recent_sends("13800000001", "sms", T0 + 15) == [T0 + 20]
        assert await uow.outbox.recent_sends("13800000001", "voice", T0) == [T0 + 30]
        assert await uow.outbox.recent_sends("13800000009", "sms", T0) == []


async def test_delivery_callbacks_never_move_backwards(store: Store) -> None:
    (n,) = await _enqueue(store, sms())
    await _sent(store, n, "SM1", T0 + 5)
    async with store.transaction() as uow:
        sent = await uow.outbox.delivery(n, "SM1", "sent", T0 + 6)
        delivered = await uow.outbox.delivery(n, "SM1", "delivered", T0 + 7)
        late_sent = await uow.outbox.delivery(n, "SM1", "sent", T0 + 8)
        late_queued = await uow.outbox.delivery(n, "SM1", "queued", T0 + 9)
        late_failed = await uow.outbox.delivery(n, "SM1", "undelivered", T0 + 10)
        repeated = await uow.outbox.delivery(n, "SM1", "delivered", T0 + 11)
    assert sent is not None
    assert (sent.status, sent.delivery, sent.notification) == ("sent", "sent", sms())
    assert delivered is not None
    assert (delivered.status, delivered.delivery, delivered.merged) == (
        "delivered",
        "delivered",
        False,
    )
    assert (late_sent, late_queued, late_failed, repeated) == (None, None, None, None)
    entry = await _entry(store, n)
    assert (entry.status, entry.delivery) == ("delivered", "delivered")


async def test_a_delivery_callback_that_beats_the_send_result_is_kept(
    store: Store,
) -> None:
    (n,) = await _enqueue(store, sms())
    async with store.transaction() as uow:
        await uow.outbox.mark_sending([n], T0 + 5)
        assert await uow.outbox.delivery(n, "SM1", "delivered", T0 + 6) is not None
        # The provider's answer to the send arrives after its own callback.
        await uow.outbox.sent(n, SentNotification("twilio", "SM1", "queued", "文本"), T0 + 7)
    entry = await _entry(store, n)
    assert (entry.status, entry.delivery, entry.provider_id) == ("delivered", "delivered", "SM1")


async def test_an_undelivered_callback_fails_the_notification(store: Store) -> None:
    (n,) = await _enqueue(store, sms())
    await _sent(store, n, "SM1", T0 + 5)
    async with store.transaction() as uow:
        record = await uow.outbox.delivery(n, "SM1", "undelivered", T0 + 6)
    assert record is not None
    assert (record.status, record.delivery) == ("failed", "undelivered")


async def test_a_callback_for_another_provider_id_or_no_notification_changes_nothing(
    store: Store,
) -> None:
    (n,) = await _enqueue(store, sms())
    await _sent(store, n, "SM1", T0 + 5)
    async with store.transaction() as uow:
        assert await uow.outbox.delivery(n, "SM2", "delivered", T0 + 6) is None
        assert await uow.outbox.delivery(n + 1000, "SM1", "delivered", T0 + 6) is None
    entry = await _entry(store, n)
    assert (entry.status, entry.delivery) == ("sent", "queued")


async def test_a_keypress_is_recorded_once(store: Store) -> None:
    voice = replace(sms(), channel="voice")
    (n,) = await _enqueue(store, voice)
    await _sent(store, n, "CA1", T0 + 5)
    async with store.transaction() as uow:
        assert await uow.outbox.keypress(n, "1", T0 + 20)
        await uow.outbox.keypress(n, "2", T0 + 21)
        assert not await uow.outbox.keypress(n + 1000, "1", T0 + 22)
        record = await uow.outbox.delivery(n, "CA1", "completed", T0 + 30)
    assert record is not None
    assert (record.keypress, record.status) == ("1", "delivered")
    assert (await _entry(store, n)).keypress == "1"


async def test_retrying_in_doubt_waits_for_a_lookup(store: Store) -> None:
    (n,) = await _enqueue(store, sms())
    async with store.transaction() as uow:
        await uow.outbox.mark_sending([n], T0 + 5)
        await uow.outbox.retry(n, T0 + 5, "connection reset", T0 + 6, in_doubt=True)
    async with store.transaction() as uow:
        assert await uow.outbox.due(T0 + 10, 10, in_doubt=False) == []
        (doubtful,) = await uow.outbox.due(T0 + 10, 10, in_doubt=True)
        await uow.outbox.resolved_doubt(n, T0 + 12)
    assert (doubtful.id, doubtful.claimed_at, doubtful.attempts) == (n, T0 + 5, 1)
    async with store.transaction() as uow:
        assert await uow.outbox.due(T0 + 20, 10, in_doubt=True) == []
        assert await pending_ids(uow, T0 + 11) == []
        assert await pending_ids(uow, T0 + 12) == [n]


async def test_sending_rows_left_by_a_crash_come_back_in_doubt(
    backend: Backend, store: Store
) -> None:
    sending, waiting = await _enqueue(store, sms("13800000001"), sms("13800000002"))
    async with store.transaction() as uow:
        await uow.outbox.mark_sending([sending], T0 + 5)
    await store.close()  # the gateway dies with the message handed to the provider
    again = backend.make()
    await again.open()
    try:
        async with again.transaction() as uow:
            assert await uow.outbox.release_in_doubt(T0 + 100) == 1
            assert await uow.outbox.release_in_doubt(T0 + 101) == 0
        async with again.transaction() as uow:
            (doubtful,) = await uow.outbox.due(T0 + 100, 10, in_doubt=True)
            assert await pending_ids(uow, T0 + 100) == [waiting]
        assert (doubtful.id, doubtful.claimed_at, doubtful.attempts) == (sending, T0 + 5, 1)
        # If the provider has it, the lookup settles it as sent; it is never sent twice.
        async with again.transaction() as uow:
            await uow.outbox.sent(
                sending, SentNotification("twilio", "SM7", "sent", None), T0 + 101
            )
            assert await uow.outbox.due(T0 + 200, 10, in_doubt=True) == []
            assert await uow.outbox.known_provider_ids(["SM7"]) == {"SM7"}
    finally:
        await again.close()


async def test_a_follow_up_is_written_once_per_kind(store: Store) -> None:
    (origin,) = await _enqueue(store, sms())
    voice = replace(sms(), channel="voice")
    async with store.transaction() as uow:
        assert await uow.outbox.enqueue_follow_up(origin, "fallback", voice, T0 + 60)
        assert not await uow.outbox.enqueue_follow_up(origin, "fallback", voice, T0 + 61)
        assert await uow.outbox.enqueue_follow_up(origin, "retry", sms(), T0 + 300)
    async with store.transaction() as uow:
        assert await pending_ids(uow, T0 + 59) == [origin]
        due = await uow.outbox.due(T0 + 60, 10, in_doubt=False)
    assert [(r.notification, r.origin_kind) for r in due] == [(sms(), None), (voice, "fallback")]
    entries = await store.outbox.entries()
    assert sorted((e.origin_id, e.origin_kind) for e in entries if e.origin_id is not None) == [
        (origin, "fallback"),
        (origin, "retry"),
    ]


async def test_a_voice_twin_is_the_same_message_to_the_same_person_by_voice(
    store: Store,
) -> None:
    text = sms("13800000001", params={"place": "桥元村三组"})
    other_text = sms("13800000001", params={"place": "别处"})
    a, b, _ = await _enqueue(store, text, other_text, replace(text, channel="voice"))
    async with store.transaction() as uow:
        assert await uow.outbox.voice_twin_exists(a)
        assert not await uow.outbox.voice_twin_exists(b)


async def test_a_failed_notification_is_done_and_a_bad_number_flags_its_contact(
    store: Store,
) -> None:
    await seed_grid(store)
    ids = await contact_ids(store)
    bad, dead = await _enqueue(
        store,
        sms("13800000005", contact_id=ids["孙组长"]),
        sms("13800000006", contact_id=ids["周片长"]),
    )
    async with store.transaction() as uow:
        await uow.outbox.mark_sending([bad, dead], T0 + 5)
        await uow.outbox.failed(bad, "21211 invalid number", T0 + 6, bad_number=True)
        await uow.outbox.failed(dead, "gave up", T0 + 6, bad_number=False)
        assert await pending_ids(uow) == []
        flags = by_id(await uow.grid.contacts_by_id([ids["孙组长"], ids["周片长"]]))
    assert flags[ids["孙组长"]].bad_number
    assert not flags[ids["周片长"]].bad_number
    assert [(await _entry(store, i)).status for i in (bad, dead)] == ["failed", "failed"]
    assert await store.outbox.next_at() is None
