"""The state of the current probe: its target, helpers, acks and number."""

from __future__ import annotations

from swim_py.identity import Identity
from swim_py.payload import MAX_PROBE_NUMBER, Member

__all__ = ["Probe"]


class Probe:
    """One probe at a time, judged when the next ProbeRandomMember fires.

    The probe number is a single wrapping u8 for the whole instance. It is
    incremented before each probe, so the first Ping carries 1, and it is
    never reset, not even by ``clear()`` or an identity change.
    """

    def __init__(self) -> None:
        self._target: Member | None = None
        self._helpers: list[Identity] = []
        self._probe_number = 0
        self._direct_ack = False
        self._indirect_acks = 0
        self._reached_indirect_stage = False

    @property
    def probe_number(self) -> int:
        return self._probe_number

    @property
    def target(self) -> Identity | None:
        return None if self._target is None else self._target.id

    @property
    def helpers(self) -> tuple[Identity, ...]:
        """The members sent a PingReq in this probe whose ForwardedAck is pending."""
        return tuple(self._helpers)

    def start(self, target: Member) -> int:
        """Forget the previous probe, start probing ``target`` and return its number."""
        self.clear()
        self._target = target
        self._probe_number = (self._probe_number + 1) & MAX_PROBE_NUMBER
        return self._probe_number

    def clear(self) -> None:
        """Drop the current probe, keeping the probe number."""
        self._target = None
        self._helpers.clear()
        self._direct_ack = False
        self._indirect_acks = 0
        self._reached_indirect_stage = False

    def mark_indirect_stage_reached(self) -> None:
        self._reached_indirect_stage = True

    def is_valid(self) -> bool:
        """Return whether the probe is idle or its SendIndirectProbe timer fired.

        A started probe whose indirect stage never ran points at a lost or
        reordered timer, so its outcome cannot be trusted.
        """
        return self._target is None or self._reached_indirect_stage

    def succeeded(self) -> bool:
        return self._direct_ack or self._indirect_acks > 0

    def is_probing(self, id: Identity) -> bool:
        return self._target is not None and self._target.id == id

    def take_failed(self) -> Member | None:
        """Return the target as it was at probe start if no ack came, and forget it.

        Returns None when nothing is probed or the probe succeeded. A
        successful probe keeps its target until the next ``start``.
        """
        if self.succeeded():
            return None
        failed, self._target = self._target, None
        return failed

    def receive_ack(self, src: Identity, probe_number: int) -> bool:
        """Record a direct Ack and return whether it is from this probe's target."""
        if probe_number != self._probe_number or not self.is_probing(src):
            return False
        self._direct_ack = True
        return True

    def expect_indirect_ack(self, helper: Identity) -> None:
        """Record that ``helper`` was sent a PingReq for this probe."""
        self._helpers.append(helper)

    def receive_indirect_ack(self, src: Identity, probe_number: int) -> bool:
        """Record a ForwardedAck and return whether ``src`` is a pending helper.

        Each helper counts once. The ForwardedAck's origin is not compared
        with the target, as in foca 1.0.
        """
        if probe_number != self._probe_number or src not in self._helpers:
            return False
        self._helpers.remove(src)
        self._indirect_acks += 1
        return True
