"""Responder links: one secret per data folder however many processes make it at once."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from gateway.services.links import LinkError, ResponderLinks, load_or_create_secret


def test_processes_starting_together_share_one_owner_only_secret(tmp_path: Path) -> None:
    with ThreadPoolExecutor(8) as pool:
        secrets = list(pool.map(lambda _: load_or_create_secret(tmp_path), range(16)))
    assert len(set(secrets)) == 1
    assert len(secrets[0]) == 32
    assert [p.name for p in tmp_path.iterdir()] == ["link.key"]  # no temporary file left
    assert stat.S_IMODE((tmp_path / "link.key").stat().st_mode) == 0o600


def test_a_link_is_for_its_ticket_and_person_until_it_expires(tmp_path: Path) -> None:
    links = ResponderLinks(load_or_create_secret(tmp_path), "http://127.0.0.1:8080", 3600)
    token = links.token(17, 3, now=1000.0)
    grant = links.verify(token, now=1000.0 + 3599)
    assert (grant.ticket_id, grant.contact_id) == (17, 3)
    ticket, contact, expires, signature = token.split(".")
    with pytest.raises(LinkError) as forged:
        links.verify(f"{ticket}.4.{expires}.{signature}", now=1000.0)
    assert forged.value.reason == "forged"
    with pytest.raises(LinkError) as expired:
        links.verify(token, now=1000.0 + 3600)
    assert expired.value.reason == "expired"
    with pytest.raises(LinkError) as malformed:
        links.verify("17.3", now=1000.0)
    assert malformed.value.reason == "malformed"
    assert contact == "3"
