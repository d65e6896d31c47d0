//! The scenarios that produce the vectors, in the order of the file.

use std::num::NonZeroUsize;
use std::time::Duration;

use anyhow::Context as _;
use foca::{Header, Member, Message, OwnedNotification, PeriodicParams, State, Timer};

use super::harness::{
    config, crafted, header_len, identity, is_indirect_probe, is_probe, with_max_transmissions,
    Expect, Node, Recorder,
};
use crate::identity::NodeIdentity;

/// Runs every scenario and records its vectors in a fixed order.
pub(super) fn record_all(recorder: &mut Recorder) -> anyhow::Result<()> {
    join_and_probe_v4(recorder)?;
    join_and_probe_v6(recorder)?;
    indirect_probe_chain(recorder)?;
    feeds(recorder)?;
    gossip_and_broadcasts(recorder)?;
    packet_size_limits(recorder)?;
    suspicion_and_turn_undead(recorder)?;
    leave_and_change_identity(recorder)?;
    max_incarnation(recorder)?;
    periodic_timers(recorder)?;
    Ok(())
}

/// Records Announce, Feed, Ping and Ack between two IPv4 members, with
/// updates in the first probe and an empty backlog in the second.
fn join_and_probe_v4(recorder: &mut Recorder) -> anyhow::Result<()> {
    let mut a = Node::new(
        identity("a", "127.0.0.1:7001", 0),
        with_max_transmissions(config(1400), 1),
        1,
    );
    let mut b = Node::new(identity("b", "127.0.0.1:7002", 0), config(1400), 2);

    a.foca.announce(
        NodeIdentity::announce_target(b.identity().addr),
        &mut a.runtime,
    )?;
    let announce = a.take_one()?;
    recorder.record(
        "announce_v4",
        "Announce from a joining member to a seed address. The dst identity has the seed's \
         address with an empty id and renewal 0, so the datagram is the header alone.",
        &a,
        &announce,
        &Expect::new("announce", None, 0),
    )?;

    b.receive(&announce.data)?;
    let feed = b.take_one()?;
    recorder.record(
        "feed_no_members",
        "Feed in reply to an Announce from a seed that knows no other member: COUNT is 0.",
        &b,
        &feed,
        &Expect::new("feed", Some(0), 0),
    )?;

    a.receive(&feed.data)?;
    a.fire(is_probe)?;
    let ping = a.take_one()?;
    recorder.record(
        "ping_with_update_v4",
        "First probe after joining: Ping with probe number 1 that carries the Alive update \
         about the probed member, learnt from the Feed's header.",
        &a,
        &ping,
        &Expect::new("ping", Some(1), 0),
    )?;

    b.add_broadcast("config", 1, b"on")?;
    b.receive(&ping.data)?;
    let ack = b.take_one()?;
    recorder.record(
        "ack_with_update_and_broadcast_v4",
        "Ack to a Ping, carrying the Alive update about the prober and one KeyedBroadcast item \
         (key \"config\", version 1).",
        &b,
        &ack,
        &Expect::new("ack", Some(1), 1),
    )?;

    a.receive(&ack.data)?;
    a.fire(is_indirect_probe)?;
    a.fire(is_probe)?;
    let second_ping = a.take_one()?;
    recorder.record(
        "ping_empty_backlog_v4",
        "Second probe from a member whose updates were all sent once already (max_transmissions \
         1): COUNT 0, then the KeyedBroadcast item that the member received in the Ack and now \
         passes on.",
        &a,
        &second_ping,
        &Expect::new("ping", Some(0), 1),
    )?;
    Ok(())
}

/// Records the same join between IPv6 members, with an empty id and a
/// large renewal.
fn join_and_probe_v6(recorder: &mut Recorder) -> anyhow::Result<()> {
    let mut x = Node::new(identity("", "[2001:db8::a]:7101", 0), config(1400), 3);
    let mut y = Node::new(identity("six", "[::1]:7102", u64::MAX - 1), config(1400), 4);

    x.foca.announce(
        NodeIdentity::announce_target(y.identity().addr),
        &mut x.runtime,
    )?;
    let announce = x.take_one()?;
    recorder.record(
        "announce_v6",
        "Announce between IPv6 members from an identity with an empty id.",
        &x,
        &announce,
        &Expect::new("announce", None, 0),
    )?;

    y.receive(&announce.data)?;
    let feed = y.take_one()?;
    recorder.record(
        "feed_no_members_v6",
        "Feed from an IPv6 member whose renewal is u64::MAX - 1.",
        &y,
        &feed,
        &Expect::new("feed", Some(0), 0),
    )?;

    x.receive(&feed.data)?;
    x.fire(is_probe)?;
    let ping = x.take_one()?;
    recorder.record(
        "ping_with_update_v6",
        "Ping between IPv6 members carrying the Alive update about the probed member.",
        &x,
        &ping,
        &Expect::new("ping", Some(1), 0),
    )?;

    y.receive(&ping.data)?;
    let ack = y.take_one()?;
    recorder.record(
        "ack_with_update_v6",
        "Ack between IPv6 members carrying the Alive update about the prober.",
        &y,
        &ack,
        &Expect::new("ack", Some(1), 0),
    )?;
    Ok(())
}

/// Records the indirect probe after a direct probe gets no Ack: PingReq,
/// IndirectPing, IndirectAck and ForwardedAck through one helper, between
/// IPv4 and IPv6 members.
fn indirect_probe_chain(recorder: &mut Recorder) -> anyhow::Result<()> {
    let a_id = identity("prober", "127.0.0.1:7201", 2);
    let b_id = identity("target", "[2001:db8::b]:7202", 0);
    let c_id = identity("helper", "127.0.0.1:7203", 5);
    let mut a = Node::new(a_id.clone(), config(1400), 5);
    let mut b = Node::new(b_id.clone(), config(1400), 6);
    let mut c = Node::new(c_id.clone(), config(1400), 7);
    a.learn(vec![
        Member::alive(b_id.clone()),
        Member::alive(c_id.clone()),
    ])?;
    b.learn(vec![
        Member::alive(a_id.clone()),
        Member::alive(c_id.clone()),
    ])?;
    c.learn(vec![
        Member::alive(a_id.clone()),
        Member::alive(b_id.clone()),
    ])?;

    // Probe until the target is b, dropping the Pings and letting each
    // probe's indirect stage run, so that the cycle stays valid.
    loop {
        a.fire(is_probe)?;
        let ping = a.take_one()?;
        if ping.dst == b_id {
            break;
        }
        c.receive(&ping.data)?;
        a.receive_from(&mut c)?;
        a.fire(is_indirect_probe)?;
        a.clear_sent();
    }
    a.fire(is_indirect_probe)?;
    let ping_req = a.take_one()?;
    recorder.record(
        "ping_req",
        "PingReq to the only helper after the target's Ack did not arrive in time. The target \
         identity is IPv6, and the datagram carries the prober's remaining updates.",
        &a,
        &ping_req,
        &Expect::new("ping_req", Some(2), 0),
    )?;

    c.receive(&ping_req.data)?;
    let indirect_ping = c.take_one()?;
    recorder.record(
        "indirect_ping",
        "IndirectPing from the helper to the target on the prober's behalf, with origin the \
         prober.",
        &c,
        &indirect_ping,
        &Expect::new("indirect_ping", Some(2), 0),
    )?;

    b.receive(&indirect_ping.data)?;
    let indirect_ack = b.take_one()?;
    recorder.record(
        "indirect_ack",
        "IndirectAck from the target back to the helper, with target the prober.",
        &b,
        &indirect_ack,
        &Expect::new("indirect_ack", Some(2), 0),
    )?;

    c.receive(&indirect_ack.data)?;
    let forwarded_ack = c.take_one()?;
    recorder.record(
        "forwarded_ack",
        "ForwardedAck from the helper to the prober, with origin the target.",
        &c,
        &forwarded_ack,
        &Expect::new("forwarded_ack", Some(2), 0),
    )?;
    a.receive(&forwarded_ack.data)?;
    Ok(())
}

/// Records Feeds with members and a custom broadcast, and one cut at a
/// small `max_packet_size`.
fn feeds(recorder: &mut Recorder) -> anyhow::Result<()> {
    let joiner = identity("joiner", "127.0.0.1:7301", 0);
    let known: Vec<Member<NodeIdentity>> = (0..8u16)
        .map(|index| {
            let member = identity(&format!("m{index}"), &format!("10.0.3.{index}:7300"), 0);
            let state = if index == 7 {
                State::Suspect
            } else {
                State::Alive
            };
            Member::new(member, index, state)
        })
        .collect();

    let mut seed = Node::new(identity("seed", "127.0.0.1:7300", 0), config(1400), 8);
    seed.learn(known.clone())?;
    seed.add_broadcast("feed", 3, b"payload")?;
    let announce = crafted(
        &joiner,
        0,
        &NodeIdentity::announce_target(seed.identity().addr),
        Message::Announce,
        None,
    );
    seed.receive(&announce)?;
    let feed = seed.take_one()?;
    recorder.record(
        "feed_with_members_and_broadcast",
        "Feed from a seed that knows eight members, one of them Suspect: every active member \
         fits in 1400 bytes, then one KeyedBroadcast item.",
        &seed,
        &feed,
        &Expect::new("feed", Some(8), 1),
    )?;

    let mut small = Node::new(identity("seed", "127.0.0.1:7300", 0), config(160), 9);
    small.learn(known)?;
    small.receive(&announce)?;
    let feed = small.take_one()?;
    let decoded = recorder.record(
        "feed_cut_at_max_packet_size",
        "Feed from a seed with max_packet_size 160 that knows eight members: foca stops at the \
         first member that does not fit, so the Feed carries fewer than eight.",
        &small,
        &feed,
        &Expect::new("feed", Some(5), 0),
    )?;
    anyhow::ensure!(decoded.updates.is_some_and(|updates| updates.len() < 8));
    Ok(())
}

/// Records Gossip and Broadcast messages with updates and custom
/// broadcasts, including an item that replaced an older version of its key.
fn gossip_and_broadcasts(recorder: &mut Recorder) -> anyhow::Result<()> {
    let peer = identity("peer", "[2001:db8::4]:7401", 1);
    let mut node = Node::new(identity("gossiper", "127.0.0.1:7400", 0), config(1400), 10);
    node.learn(vec![
        Member::new(peer.clone(), 3, State::Alive),
        Member::new(identity("sus", "127.0.0.1:7402", 0), 1, State::Suspect),
        Member::new(identity("gone", "127.0.0.1:7403", 0), 2, State::Down),
    ])?;
    node.add_broadcast("color", 1, b"red")?;
    node.add_broadcast("size", 7, &[0x00, 0xff])?;
    node.add_broadcast("color", 2, b"blue")?;

    node.foca.gossip(&mut node.runtime)?;
    let gossip = node.take_to(&peer)?;
    node.clear_sent();
    recorder.record(
        "gossip_updates_and_broadcasts",
        "Gossip carrying Alive, Suspect and Down updates and two KeyedBroadcast items: \"color\" \
         version 2 replaced version 1 in the backlog before anything was sent.",
        &node,
        &gossip,
        &Expect::new("gossip", Some(3), 2),
    )?;

    node.foca.broadcast(&mut node.runtime)?;
    let broadcast = node.take_to(&peer)?;
    node.clear_sent();
    recorder.record(
        "broadcast_items",
        "Broadcast message: the header and then the custom broadcast items, with no COUNT.",
        &node,
        &broadcast,
        &Expect::new("broadcast", None, 2),
    )?;

    // A Broadcast with more items than fit in max_packet_size 128.
    let mut small = Node::new(identity("b", "127.0.0.1:7404", 0), config(128), 11);
    small.learn(vec![Member::alive(peer.clone())])?;
    for index in 0..4u8 {
        small.add_broadcast(&format!("key{index}"), u64::from(index), &[index; 30])?;
    }
    small.foca.broadcast(&mut small.runtime)?;
    let cut = small.take_one()?;
    recorder.record(
        "broadcast_cut_at_max_packet_size",
        "Broadcast from a member with max_packet_size 128 and four pending items of 38 to 40 \
         bytes: only the items that fit go in, whole.",
        &small,
        &cut,
        &Expect::new("broadcast", None, 1),
    )?;
    Ok(())
}

/// Records update sections cut at `max_packet_size`, and the COUNT rule at
/// the edge: COUNT needs more than 2 bytes left after the header.
fn packet_size_limits(recorder: &mut Recorder) -> anyhow::Result<()> {
    let src = identity("n", "127.0.0.1:7500", 0);
    let dst = identity("d", "127.0.0.1:7501", 0);
    let others: Vec<Member<NodeIdentity>> = (0..12u16)
        .map(|index| {
            Member::new(
                identity(&format!("u{index}"), &format!("192.0.2.{index}:7502"), 0),
                index,
                State::Down,
            )
        })
        .collect();

    let mut node = Node::new(src.clone(), config(200), 12);
    node.learn(vec![Member::alive(dst.clone())])?;
    node.learn(others)?;
    node.add_broadcast("big", 1, &[0xab; 40])?;
    node.foca.gossip(&mut node.runtime)?;
    let gossip = node.take_to(&dst)?;
    node.clear_sent();
    recorder.record(
        "gossip_updates_cut_at_max_packet_size",
        "Gossip from a member with max_packet_size 200 and 13 pending updates (its only active \
         member, the dst, and 12 Down members): the updates that fit, and no room left for the \
         pending broadcast item of 49 bytes.",
        &node,
        &gossip,
        &Expect::new("gossip", Some(7), 0),
    )?;

    let gossip_header = Header {
        src: src.clone(),
        src_incarnation: 0,
        dst: dst.clone(),
        message: Message::Gossip,
    };
    let base = header_len(&gossip_header);
    let cases = [
        (
            0,
            "gossip_header_only_at_max_packet_size",
            "Gossip whose header fills max_packet_size exactly: no COUNT.",
            None,
        ),
        (
            2,
            "gossip_no_room_for_count",
            "Gossip with exactly 2 bytes left after the header: foca writes no COUNT, since \
             COUNT needs more than 2 bytes left.",
            None,
        ),
        (
            3,
            "gossip_count_only",
            "Gossip with 3 bytes left after the header: COUNT 0, and the 1 byte left holds no \
             update or broadcast item.",
            Some(0),
        ),
    ];
    for (extra, name, description, updates) in cases {
        let mut edge = Node::new(src.clone(), config(base + extra), 13);
        edge.learn(vec![Member::alive(dst.clone())])?;
        edge.foca.gossip(&mut edge.runtime)?;
        let sent = edge.take_one()?;
        recorder.record(
            name,
            description,
            &edge,
            &sent,
            &Expect::new("gossip", updates, 0),
        )?;
    }
    Ok(())
}

/// Records a failed probe: the Ping with a Suspect update, the TurnUndead
/// to the member declared Down, and that member's Gossip after it renewed
/// its identity.
fn suspicion_and_turn_undead(recorder: &mut Recorder) -> anyhow::Result<()> {
    let mut notifying = config(1400);
    notifying.notify_down_members = true;
    let a_id = identity("watcher", "127.0.0.1:7601", 0);
    let b_id = identity("silent", "127.0.0.1:7602", 0);
    let mut a = Node::new(a_id.clone(), notifying, 14);
    let mut b = Node::new(b_id.clone(), config(1400), 15);
    a.learn(vec![Member::alive(b_id.clone())])?;
    b.learn(vec![Member::alive(a_id.clone())])?;

    a.fire(is_probe)?;
    a.clear_sent();
    a.fire(is_indirect_probe)?;
    a.fire(is_probe)?;
    let ping = a.take_one()?;
    recorder.record(
        "ping_with_suspect_update",
        "Ping that starts the next probe after a failed one: it carries the Suspect update \
         about the member it probes, which is the one that failed.",
        &a,
        &ping,
        &Expect::new("ping", Some(1), 0),
    )?;

    a.fire(|timer| matches!(timer, Timer::ChangeSuspectToDown { .. }))?;
    let turn_undead = a.take_one()?;
    recorder.record(
        "turn_undead",
        "TurnUndead to a member whose suspicion timed out, from a member with \
         notify_down_members on: the header alone.",
        &a,
        &turn_undead,
        &Expect::new("turn_undead", None, 0),
    )?;

    b.receive(&turn_undead.data)?;
    let rejoin = b.take_one()?;
    anyhow::ensure!(
        b.runtime
            .notifications
            .iter()
            .any(|notification| matches!(notification, OwnedNotification::Rejoin(_))),
        "the member did not rejoin"
    );
    recorder.record(
        "gossip_after_rejoin",
        "Gossip from a member that received TurnUndead and renewed its identity (renewal 1): \
         the Down update about its previous identity and the Alive update about the sender of \
         the TurnUndead.",
        &b,
        &rejoin,
        &Expect::new("gossip", Some(2), 0),
    )?;
    Ok(())
}

/// Records the Gossip that `leave_cluster` and `change_identity` send.
fn leave_and_change_identity(recorder: &mut Recorder) -> anyhow::Result<()> {
    let peer = identity("peer", "127.0.0.1:7701", 0);
    let mut leaving = Node::new(
        identity("leaver", "127.0.0.1:7700", 9),
        with_max_transmissions(config(1400), 1),
        16,
    );
    leaving.learn(vec![Member::alive(peer.clone())])?;
    leaving.foca.gossip(&mut leaving.runtime)?;
    leaving.clear_sent();
    leaving.foca.leave_cluster(&mut leaving.runtime)?;
    let leave = leaving.take_one()?;
    recorder.record(
        "leave_cluster_gossip",
        "Gossip sent by leave_cluster: the member's own Down update at incarnation 0.",
        &leaving,
        &leave,
        &Expect::new("gossip", Some(1), 0),
    )?;

    let mut renaming = Node::new(
        identity("max", "[::ffff:192.0.2.9]:7702", u64::MAX - 1),
        with_max_transmissions(config(1400), 1),
        17,
    );
    renaming.learn(vec![Member::alive(peer.clone())])?;
    renaming.foca.gossip(&mut renaming.runtime)?;
    renaming.clear_sent();
    let renewed =
        foca::Identity::renew(renaming.foca.identity()).context("the renewal is below u64::MAX")?;
    renaming
        .foca
        .change_identity(renewed, &mut renaming.runtime)?;
    let change = renaming.take_one()?;
    recorder.record(
        "change_identity_max_renewal",
        "Gossip sent by change_identity from an IPv4-mapped IPv6 address: the src is the renewed \
         identity with renewal u64::MAX, and the update is the Down of the previous identity.",
        &renaming,
        &change,
        &Expect::new("gossip", Some(1), 0),
    )?;
    Ok(())
}

/// Records the refutation of a suspicion up to incarnation 65535, then the
/// rejoin once no incarnation is left, with an update that carries 65535.
fn max_incarnation(recorder: &mut Recorder) -> anyhow::Result<()> {
    let me = identity("refuter", "127.0.0.1:7800", 0);
    let peer = identity("accuser", "127.0.0.1:7801", 0);
    let other = identity("old", "10.0.8.2:7802", 0);
    let mut node = Node::new(me.clone(), config(1400), 18);

    let suspicion = crafted(
        &peer,
        4,
        &me,
        Message::Gossip,
        // foca applies updates in order, so the member at 65535 is known
        // when the refutation goes out.
        Some(vec![
            Member::new(other.clone(), u16::MAX, State::Alive),
            Member::new(me.clone(), 65_534, State::Suspect),
        ]),
    );
    node.receive(&suspicion)?;
    let refutation = node.take_to(&peer)?;
    node.clear_sent();
    recorder.record(
        "refutation_at_max_incarnation",
        "Gossip that refutes a suspicion at incarnation 65534: src_incarnation is 65535, and the \
         updates include a member at incarnation 65535.",
        &node,
        &refutation,
        &Expect::new("gossip", Some(2), 0),
    )?;

    let final_suspicion = crafted(
        &peer,
        4,
        &me,
        Message::Gossip,
        Some(vec![Member::new(me.clone(), u16::MAX, State::Suspect)]),
    );
    node.receive(&final_suspicion)?;
    let rejoin = node.take_to(&peer)?;
    node.clear_sent();
    recorder.record(
        "rejoin_after_max_incarnation",
        "Gossip after a suspicion at incarnation 65535, which cannot be refuted: the member \
         renewed its identity (renewal 1, incarnation 0) and declares the previous one Down, \
         beside the two updates still pending.",
        &node,
        &rejoin,
        &Expect::new("gossip", Some(3), 0),
    )?;
    Ok(())
}

/// Records what the periodic timers send: Announce to a known member and to
/// a Down member, and Gossip.
fn periodic_timers(recorder: &mut Recorder) -> anyhow::Result<()> {
    let every_second = Some(PeriodicParams {
        frequency: Duration::from_secs(1),
        num_members: NonZeroUsize::new(1).expect("1 is positive"),
    });
    let mut periodic = config(1400);
    periodic.periodic_announce = every_second.clone();
    periodic.periodic_announce_to_down_members = every_second.clone();
    periodic.periodic_gossip = every_second;

    let peer = identity("peer", "127.0.0.1:7901", 0);
    let down = identity("down", "127.0.0.1:7902", 3);
    let mut node = Node::new(identity("ticker", "127.0.0.1:7900", 0), periodic, 19);
    node.learn(vec![
        Member::alive(peer.clone()),
        Member::new(down.clone(), 1, State::Down),
    ])?;

    node.fire(|timer| matches!(timer, Timer::PeriodicAnnounce(_)))?;
    let announce = node.take_one()?;
    recorder.record(
        "periodic_announce",
        "Announce sent by the PeriodicAnnounce timer to a known member, addressed to its full \
         identity.",
        &node,
        &announce,
        &Expect::new("announce", None, 0),
    )?;

    node.fire(|timer| matches!(timer, Timer::PeriodicAnnounceDown(_)))?;
    let announce_down = node.take_one()?;
    anyhow::ensure!(
        announce_down.dst == down,
        "periodic announce went to the wrong member"
    );
    recorder.record(
        "periodic_announce_to_down_member",
        "Announce sent by the PeriodicAnnounceDown timer to a member known as Down.",
        &node,
        &announce_down,
        &Expect::new("announce", None, 0),
    )?;

    node.add_broadcast("tick", 1, b"t")?;
    node.fire(|timer| matches!(timer, Timer::PeriodicGossip(_)))?;
    let gossip = node.take_one()?;
    recorder.record(
        "periodic_gossip",
        "Gossip sent by the PeriodicGossip timer: the pending Alive and Down updates and one \
         KeyedBroadcast item.",
        &node,
        &gossip,
        &Expect::new("gossip", Some(2), 1),
    )?;
    Ok(())
}
