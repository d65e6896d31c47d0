"""Errors raised by swim_py.

The receive-path errors mirror foca 1.0's `Error` variants and carry the same
class names that the conformance contract reports (``SwimError.error_class``).
Each docstring says whether the instance's state may have changed.
"""

from __future__ import annotations


class SwimError(Exception):
    """Base class of every swim_py error."""

    error_class = "other"


class ConfigError(SwimError, ValueError):
    """A Config field has an invalid value. Nothing was changed."""


class DataTooBigError(SwimError):
    """The datagram or broadcast exceeds ``max_packet_size``. No state changed."""

    error_class = "data_too_big"


class DecodeError(SwimError):
    """The codec failed to decode the header or an update. No state changed."""

    error_class = "decode"


class EncodeError(SwimError):
    """The header does not fit in ``max_packet_size``. Nothing was sent."""

    error_class = "encode"


class DataFromOurselvesError(SwimError):
    """The datagram claims our identity or our address as its sender. No state changed.

    Two live nodes configured with the same address cause this.
    """

    error_class = "data_from_ourselves"


class MalformedPacketError(SwimError):
    """The datagram's framing is invalid.

    Raised before any state change for a 1-byte tail or an Announce with a
    tail. Raised after the header's sender and the updates were applied, and
    after any reply was sent, for a bad custom broadcast tail.
    """

    error_class = "malformed_packet"


class IndirectForOurselvesError(SwimError):
    """An indirect probe message names us as its target or origin.

    Raised after the sender and the updates were applied.
    """

    error_class = "indirect_for_ourselves"


class CustomBroadcastError(SwimError):
    """The broadcast handler rejected an item.

    Items before it in the same datagram stay accepted, and the rest of the
    datagram was already processed.
    """

    error_class = "custom_broadcast"


class IncompleteProbeCycleError(SwimError):
    """A probe's indirect stage never ran, so the probe was discarded without suspicion.

    This points at a driver that lost or reordered a SendIndirectProbe timer.
    A new probe was started.
    """

    error_class = "incomplete_probe_cycle"


class NotConnectedError(SwimError):
    """The operation needs a connected node. No state changed."""

    error_class = "not_connected"


class SameIdentityError(SwimError):
    """``change_identity`` got the current identity. No state changed."""


class NotUndeadError(SwimError):
    """``reuse_down_identity`` needs an undead node. No state changed."""


class InvalidConfigError(SwimError):
    """``set_config`` got a change that is not allowed at runtime.

    No state changed.
    """


ERROR_CLASSES = (
    "data_too_big",
    "decode",
    "data_from_ourselves",
    "malformed_packet",
    "indirect_for_ourselves",
    "custom_broadcast",
    "incomplete_probe_cycle",
    "not_connected",
    "encode",
    "other",
)
