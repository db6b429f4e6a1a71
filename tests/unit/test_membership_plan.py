"""The order of the venue's membership changes (``validator.node.membership.next_step``) and the
venue directory that maps committee facilities to etcd peer URLs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from validator.node.membership import (
    EtcdMember,
    VenueSite,
    next_step,
    read_directory,
    wanted_peer_urls,
)

FRA, AMS, DAL, SGP, LON = (f"http://198.18.0.{i}:2380" for i in (1, 2, 3, 4, 5))


def m(url: str, learner: bool = False) -> EtcdMember:
    return EtcdMember(member_id=f"id-{url[-6:-5]}", name="", peer_urls=(url,), learner=learner)


def plan(members: list[EtcdMember], wanted: list[str], dead: tuple[str, ...] = ()) -> tuple:
    step = next_step(members, wanted, lambda x: x.peer_urls[0] not in dead)
    return None if step is None else (step.action, step.peer_url)


def test_converged_membership_needs_no_change() -> None:
    assert plan([m(FRA), m(AMS), m(DAL)], [DAL, AMS, FRA]) is None


def test_a_missing_site_joins_as_a_learner_then_is_promoted() -> None:
    assert plan([m(FRA), m(AMS)], [FRA, AMS, SGP]) == ("add-learner", SGP)
    assert plan([m(FRA), m(AMS), m(SGP, learner=True)], [FRA, AMS, SGP]) == ("promote", SGP)


def test_joins_go_one_at_a_time() -> None:
    """While one learner is pending, the next missing site waits (its promotion comes first)."""
    members = [m(FRA), m(AMS), m(SGP, learner=True)]
    assert plan(members, [FRA, AMS, SGP, LON]) == ("promote", SGP)
    assert plan([m(FRA), m(AMS), m(SGP)], [FRA, AMS, SGP, LON]) == ("add-learner", LON)


def test_a_live_member_leaves_only_after_every_wanted_site_votes() -> None:
    assert plan([m(FRA), m(AMS), m(DAL)], [FRA, AMS, SGP]) == ("add-learner", SGP)
    assert plan([m(FRA), m(AMS), m(DAL), m(SGP)], [FRA, AMS, SGP]) == ("remove", DAL)


def test_a_dead_member_leaves_before_any_join() -> None:
    assert plan([m(FRA), m(AMS), m(DAL)], [FRA, AMS, SGP], dead=(DAL,)) == ("remove", DAL)


def test_a_learner_that_never_catches_up_does_not_keep_a_dead_member_in() -> None:
    members = [m(FRA), m(AMS), m(DAL), m(SGP, learner=True)]
    assert plan(members, [FRA, AMS, SGP], dead=(DAL,)) == ("remove", DAL)
    assert plan(members, [FRA, AMS, SGP]) == ("promote", SGP)


def test_an_unwanted_learner_is_removed_first() -> None:
    members = [m(FRA), m(AMS), m(DAL), m(LON, learner=True)]
    assert plan(members, [FRA, AMS, DAL, SGP]) == ("remove-learner", LON)


def test_the_last_voting_member_and_an_empty_committee_are_never_removed() -> None:
    assert plan([m(DAL)], [SGP], dead=(DAL,)) == ("add-learner", SGP)
    assert plan([m(DAL), m(SGP, learner=True)], [SGP]) == ("promote", SGP)
    assert plan([m(DAL), m(SGP)], [SGP]) == ("remove", DAL)
    assert plan([m(FRA), m(AMS)], []) is None


def test_the_wanted_sites_are_the_committee_facilities_the_directory_knows() -> None:
    fra, ams, unknown = (bytes([i]) * 32 for i in (1, 2, 9))
    directory = [VenueSite("fra1", fra, FRA, "c1"), VenueSite("ams1", ams, AMS, "c2")]
    assert wanted_peer_urls([ams, fra, ams, unknown], directory) == [AMS, FRA]


def test_the_venue_directory_is_read_and_bad_entries_are_named(tmp_path: Path) -> None:
    path = tmp_path / "venue.json"
    good = {
        "name": "fra1",
        "facility_id": "0x" + "11" * 32,
        "etcd_peer_url": FRA,
        "etcd_client_url": "http://198.18.0.1:2379",
    }
    path.write_text(json.dumps([good]))
    assert read_directory(path) == [
        VenueSite("fra1", bytes([0x11]) * 32, FRA, "http://198.18.0.1:2379")
    ]
    for bad, message in (
        ({**good, "facility_id": "0x1234"}, "site 0: facility_id must be 32 bytes, got 2"),
        ({**good, "facility_id": "zz"}, "site 0: facility_id is not hex"),
        ({k: v for k, v in good.items() if k != "etcd_peer_url"}, "site 0: etcd_peer_url"),
    ):
        path.write_text(json.dumps([bad]))
        with pytest.raises(ValueError, match=message):
            read_directory(path)
    path.write_text("{}")
    with pytest.raises(ValueError, match="expected a JSON list"):
        read_directory(path)
