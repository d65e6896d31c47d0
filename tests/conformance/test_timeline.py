"""False-positive accounting and traffic summaries (conformance/timeline.py)."""

from __future__ import annotations

from typing import Any

from conformance.contract import Event, Identity, StatsReply
from conformance.faults import LinkFault
from conformance.timeline import FaultWindows, traffic_summary


def _identity(name: str, renewal: int = 0) -> Identity:
    return Identity(name.encode().hex(), f"127.0.0.1:{4000 + int(name[1:])}", renewal)


NAMES = ("n0", "n1", "n2", "n3")


def _down(observer: str, member: Identity, ts: float) -> Event:
    raw: dict[str, Any] = {
        "type": "event",
        "ts": ts,
        "kind": "member_down",
        "member": member.to_json(),
    }
    return Event(observer, 0, ts, ts, "member_down", raw)


def test_down_of_a_healthy_node_is_false() -> None:
    windows = FaultWindows()

    found = windows.false_downs(
        [_down("n0", _identity("n1"), 100.0)], grace=5, names=NAMES
    )

    assert len(found) == 1
    assert found[0].startswith("n0 declared n1")


def test_down_after_kill_or_pause_is_explained() -> None:
    windows = FaultWindows()
    windows.node_out("n1", 90.0)
    windows.node_back("n1", 95.0)

    assert (
        windows.false_downs([_down("n0", _identity("n1"), 98.0)], grace=5, names=NAMES)
        == []
    )
    # Outside the grace window the earlier pause no longer explains it.
    assert (
        len(
            windows.false_downs(
                [_down("n0", _identity("n1"), 120.0)], grace=5, names=NAMES
            )
        )
        == 1
    )


def test_down_by_a_disconnected_observer_is_explained() -> None:
    windows = FaultWindows()
    windows.node_out("n1", 90.0)

    # n1, cut off, declares the others down; n0 declaring n2 down is not
    # explained by n1's disconnect.
    assert (
        windows.false_downs([_down("n1", _identity("n2"), 98.0)], grace=10, names=NAMES)
        == []
    )
    assert (
        len(
            windows.false_downs(
                [_down("n0", _identity("n2"), 98.0)], grace=10, names=NAMES
            )
        )
        == 1
    )


def test_down_across_a_cut_link_is_explained() -> None:
    windows = FaultWindows()
    windows.links(90.0, {("n2", "n1"): LinkFault(loss=1.0)})
    windows.links(100.0, {})

    # n0 was never cut off from n1, but n2 was, and n2's Down spreads to n0.
    assert (
        windows.false_downs([_down("n0", _identity("n1"), 101.0)], grace=5, names=NAMES)
        == []
    )
    assert (
        len(
            windows.false_downs(
                [_down("n0", _identity("n3"), 101.0)], grace=5, names=NAMES
            )
        )
        == 1
    )


def test_loss_alone_explains_nothing() -> None:
    windows = FaultWindows()
    windows.links(90.0, {("n0", "n1"): LinkFault(loss=0.3)})

    assert (
        len(
            windows.false_downs(
                [_down("n0", _identity("n1"), 95.0)], grace=5, names=NAMES
            )
        )
        == 1
    )


def test_down_of_a_renewed_identity_is_explained() -> None:
    windows = FaultWindows()
    old = _identity("n1", 0)
    renewed = _identity("n1", 1)
    identities = [("n1", 10.0, old), ("n1", 99.0, renewed)]

    assert windows.false_downs([_down("n0", old, 100.0)], 5, identities, NAMES) == []
    assert len(windows.false_downs([_down("n0", old, 50.0)], 5, identities, NAMES)) == 1


def test_forged_member_is_not_counted() -> None:
    stranger = Identity("ff", "127.0.0.1:9", 0)

    assert (
        FaultWindows().false_downs([_down("n0", stranger, 1.0)], grace=5, names=NAMES)
        == []
    )


def test_traffic_from_the_relay() -> None:
    relay = {
        "n0": {"datagrams": 100, "bytes": 5000, "dropped": 3},
        "n1": {"datagrams": 60, "bytes": 3000, "dropped": 1},
        "outsider": {"datagrams": 7, "bytes": 70, "dropped": 0},
    }

    summary = traffic_summary(relay, [], seconds=10.0, nodes=2)

    assert summary["source"] == "relay"
    assert summary["datagrams_per_node_per_second"] == 8.0
    assert summary["bytes_per_node_per_second"] == 400.0
    assert summary["dropped"] == 4
    assert "outsider" not in summary["per_node"]


def test_traffic_from_received_counts() -> None:
    stats = StatsReply(errors={}, received={"a": {"ping": 10, "ack": 10}})

    summary = traffic_summary(None, [(object(), stats)], seconds=2.0, nodes=5)  # type: ignore[list-item]

    assert summary["source"] == "received counts"
    assert summary["datagrams_per_node_per_second"] == 2.0
    assert summary["bytes_per_node_per_second"] is None
