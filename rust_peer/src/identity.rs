//! The member identity that conformance nodes put on the wire.

use std::fmt;
use std::net::SocketAddr;

use foca::Identity;

/// A cluster member's name: opaque bytes, the UDP address and a renewal
/// counter.
///
/// Two identities are equal only when all three fields are equal. The address
/// is foca's conflict key, so a cluster contains at most one member per address,
/// and when two identities share one, the larger `renewal` wins.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct NodeIdentity {
    /// Application-chosen bytes, for example a node name. May be empty.
    pub id: Vec<u8>,
    /// The address that other members send datagrams to.
    pub addr: SocketAddr,
    /// Starts at 0 and goes up by one on every renewal.
    pub renewal: u64,
}

impl NodeIdentity {
    pub fn new(id: Vec<u8>, addr: SocketAddr, renewal: u64) -> Self {
        Self { id, addr, renewal }
    }

    /// Builds the identity used to announce to an address whose owner is not
    /// known yet. foca accepts an Announce whose destination has the
    /// receiver's address, whatever its id and renewal.
    pub fn announce_target(addr: SocketAddr) -> Self {
        Self::new(Vec::new(), addr, 0)
    }
}

impl Identity for NodeIdentity {
    type Addr = SocketAddr;

    /// Returns the same id and address with `renewal + 1`, or `None` once the
    /// counter is at `u64::MAX`.
    fn renew(&self) -> Option<Self> {
        let renewal = self.renewal.checked_add(1)?;
        Some(Self::new(self.id.clone(), self.addr, renewal))
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Keeps `self` over another identity with the same address only when its
    /// renewal is strictly larger, so foca replaces the known member on a tie.
    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        self.renewal > adversary.renewal
    }
}

/// Formats as `hex(id)@addr#renewal`, for example `6e31@127.0.0.1:8000#0`,
/// with `-` for an empty id, to keep foca's tracing output short.
impl fmt::Debug for NodeIdentity {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.id.is_empty() {
            formatter.write_str("-")?;
        }
        for byte in &self.id {
            write!(formatter, "{byte:02x}")?;
        }
        write!(formatter, "@{}#{}", self.addr, self.renewal)
    }
}

impl fmt::Display for NodeIdentity {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, formatter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().expect("valid socket address in test")
    }

    #[test]
    fn renew_increments_renewal_only() {
        let identity = NodeIdentity::new(b"n1".to_vec(), addr("127.0.0.1:8000"), 4);
        let renewed = identity.renew().expect("renewal below u64::MAX");
        assert_eq!(renewed.id, identity.id);
        assert_eq!(renewed.addr, identity.addr);
        assert_eq!(renewed.renewal, 5);
    }

    #[test]
    fn renew_stops_at_u64_max() {
        let identity = NodeIdentity::new(Vec::new(), addr("127.0.0.1:8000"), u64::MAX);
        assert_eq!(identity.renew(), None);
    }

    #[test]
    fn renewed_identity_wins_conflict() {
        let identity = NodeIdentity::new(Vec::new(), addr("[::1]:9000"), 0);
        let renewed = identity.renew().expect("renewal below u64::MAX");
        assert!(renewed.win_addr_conflict(&identity));
        assert!(!identity.win_addr_conflict(&renewed));
    }

    #[test]
    fn equal_renewal_wins_no_conflict() {
        let first = NodeIdentity::new(b"a".to_vec(), addr("127.0.0.1:8000"), 3);
        let second = NodeIdentity::new(b"b".to_vec(), addr("127.0.0.1:8000"), 3);
        assert!(!first.win_addr_conflict(&second));
        assert!(!second.win_addr_conflict(&first));
    }

    #[test]
    fn equality_covers_every_field() {
        let base = NodeIdentity::new(b"a".to_vec(), addr("127.0.0.1:8000"), 1);
        let other_id = NodeIdentity::new(b"b".to_vec(), base.addr, 1);
        let other_addr = NodeIdentity::new(b"a".to_vec(), addr("127.0.0.1:8001"), 1);
        let other_renewal = NodeIdentity::new(b"a".to_vec(), base.addr, 2);
        assert_ne!(base, other_id);
        assert_ne!(base, other_addr);
        assert_ne!(base, other_renewal);
        assert_eq!(base, base.clone());
    }

    #[test]
    fn debug_format_is_compact() {
        let identity = NodeIdentity::new(b"n1".to_vec(), addr("[::1]:9000"), 7);
        assert_eq!(format!("{identity:?}"), "6e31@[::1]:9000#7");
        let anonymous = NodeIdentity::announce_target(addr("127.0.0.1:1"));
        assert_eq!(anonymous.to_string(), "-@127.0.0.1:1#0");
    }
}
