//! The `tool sim` subcommand: N foca instances on an in-memory network with a
//! virtual clock, for `swim-conformance bench`, which runs the same steps
//! on swim_py's simulator (`swim_py.testing.sim`).
//!
//! The steps, in virtual time, with `Config::new_lan(N)`:
//!
//! 1. Every node learns every other one through `apply_many` (Alive,
//!    incarnation 0, no broadcast), as if restored from a saved member list.
//! 2. Two probe periods of warm-up, then `steady_periods` timed periods.
//! 3. A new node announces to node 0; the run goes on until each of the N
//!    nodes has reported it up.
//! 4. Node 1 stops; the run goes on until each live node has reported it
//!    down.
//!
//! Datagrams take 2 ms plus a uniform 0 to 1 ms, as in swim_py's simulator,
//! and timers that fall due together fire in foca's `Timer` order. One JSON
//! object on stdout reports the wall-clock and CPU seconds of each step and
//! the virtual probe periods that steps 3 and 4 took. CPU seconds come from
//! `/proc/self/stat` in 10 ms ticks, so steps shorter than a few ticks read
//! as 0 or 0.01.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use foca::{Config, Foca, Member, NoCustomBroadcast, Notification, Runtime, Timer};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde_json::json;

use crate::bench::process_cpu_seconds;
use crate::codec::ProtoCodec;
use crate::identity::NodeIdentity;

type SimFoca = Foca<NodeIdentity, ProtoCodec, StdRng, NoCustomBroadcast>;

/// Node `i` listens on 127.0.0.1 at this port plus `i`, as in swim_py's
/// simulator.
const BASE_PORT: u16 = 7000;
const LATENCY: Duration = Duration::from_millis(2);
const JITTER_NANOS: u64 = 1_000_000;
/// Virtual time between two checks of the join and crash goals.
const POLL: Duration = Duration::from_millis(100);
const WARMUP_PERIODS: u32 = 2;

/// The settings of one simulation run.
#[derive(Debug, Clone)]
pub struct SimSettings {
    pub nodes: usize,
    pub seed: u64,
    pub steady_periods: u32,
    /// The join and crash steps each give up after this many periods.
    pub max_periods: u32,
}

/// Returns foca's rank of a timer kind, the order in which timers that fall
/// due at the same instant fire.
fn timer_rank(timer: &Timer<NodeIdentity>) -> u8 {
    match timer {
        Timer::SendIndirectProbe { .. } => 0,
        Timer::ProbeRandomMember(_) => 1,
        Timer::ChangeSuspectToDown { .. } => 2,
        Timer::PeriodicAnnounce(_) => 3,
        Timer::PeriodicGossip(_) => 4,
        Timer::RemoveDown(_) => 5,
        Timer::PeriodicAnnounceDown(_) => 6,
    }
}

/// A pending timer of one node, ordered by (deadline, rank, sequence).
struct QueuedTimer {
    deadline: Duration,
    rank: u8,
    sequence: u64,
    timer: Timer<NodeIdentity>,
}

impl QueuedTimer {
    fn key(&self) -> (Duration, u8, u64) {
        (self.deadline, self.rank, self.sequence)
    }
}

impl PartialEq for QueuedTimer {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for QueuedTimer {}

impl PartialOrd for QueuedTimer {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for QueuedTimer {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

/// Outputs of one foca call, routed by the cluster after the call.
#[derive(Default)]
struct Outputs {
    sends: Vec<(SocketAddr, Vec<u8>)>,
    timers: Vec<(Timer<NodeIdentity>, Duration)>,
    up: Vec<SocketAddr>,
    down: Vec<NodeIdentity>,
    rejoins: u64,
}

impl Runtime<NodeIdentity> for Outputs {
    fn notify(&mut self, notification: Notification<'_, NodeIdentity>) {
        match notification {
            Notification::MemberUp(id) => self.up.push(id.addr),
            Notification::MemberDown(id) => self.down.push(id.clone()),
            Notification::Rejoin(_) => self.rejoins += 1,
            _ => {}
        }
    }

    fn send_to(&mut self, to: NodeIdentity, data: &[u8]) {
        self.sends.push((to.addr, data.to_vec()));
    }

    fn submit_after(&mut self, event: Timer<NodeIdentity>, after: Duration) {
        self.timers.push((event, after));
    }
}

struct Node {
    foca: SimFoca,
    addr: SocketAddr,
    running: bool,
    timers: BinaryHeap<Reverse<QueuedTimer>>,
}

/// A datagram in flight, ordered by (delivery time, sequence).
type Flight = Reverse<(Duration, u64, usize, Vec<u8>)>;

struct Cluster {
    config: Config,
    seed: u64,
    now: Duration,
    nodes: Vec<Node>,
    by_addr: HashMap<SocketAddr, usize>,
    in_flight: BinaryHeap<Flight>,
    /// (deadline, sequence, node index). Entries may be stale, which is
    /// harmless: a wake-up fires only the timers now due.
    wakeups: BinaryHeap<Reverse<(Duration, u64, usize)>>,
    sequence: u64,
    network_rng: StdRng,
    /// The address watched for in the join and crash steps, and the nodes
    /// that reported it.
    watch_up: Option<(SocketAddr, Vec<bool>)>,
    watch_down: Option<(SocketAddr, Vec<bool>)>,
    errors: u64,
    /// Share of datagrams dropped in flight, from 0 to 1.
    loss: f64,
    dropped: u64,
    /// MemberDown notifications that named a running node's current
    /// identity, and those that named an identity no running node uses.
    false_downs: u64,
    stale_downs: u64,
    rejoins: u64,
}

fn sim_address(index: usize) -> anyhow::Result<SocketAddr> {
    let port = u16::try_from(index)
        .ok()
        .and_then(|offset| BASE_PORT.checked_add(offset))
        .context("too many nodes: ports run past 65535")?;
    Ok(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port))
}

impl Cluster {
    fn new(size: usize, seed: u64) -> anyhow::Result<Self> {
        let cluster_size = u32::try_from(size)
            .ok()
            .and_then(NonZeroU32::new)
            .context("the node count must be from 1 to 2^32 - 1")?;
        let mut cluster = Self {
            config: Config::new_lan(cluster_size),
            seed,
            now: Duration::ZERO,
            nodes: Vec::with_capacity(size + 1),
            by_addr: HashMap::new(),
            in_flight: BinaryHeap::new(),
            wakeups: BinaryHeap::new(),
            sequence: 0,
            network_rng: StdRng::seed_from_u64(seed),
            watch_up: None,
            watch_down: None,
            errors: 0,
            loss: 0.0,
            dropped: 0,
            false_downs: 0,
            stale_downs: 0,
            rejoins: 0,
        };
        for _ in 0..size {
            cluster.add_node()?;
        }
        Ok(cluster)
    }

    fn add_node(&mut self) -> anyhow::Result<usize> {
        let index = self.nodes.len();
        let addr = sim_address(index)?;
        let rng = StdRng::seed_from_u64(self.seed.wrapping_add(1 + index as u64));
        let identity = NodeIdentity::new(Vec::new(), addr, 0);
        let foca = Foca::new(identity, self.config.clone(), rng, ProtoCodec);
        self.nodes.push(Node {
            foca,
            addr,
            running: true,
            timers: BinaryHeap::new(),
        });
        self.by_addr.insert(addr, index);
        Ok(index)
    }

    fn identity(&self, index: usize) -> NodeIdentity {
        NodeIdentity::new(Vec::new(), self.nodes[index].addr, 0)
    }

    /// Runs `action` on node `index` and routes what it output.
    fn call(
        &mut self,
        index: usize,
        action: impl FnOnce(&mut SimFoca, &mut Outputs) -> Result<(), foca::Error>,
    ) {
        let mut outputs = Outputs::default();
        if action(&mut self.nodes[index].foca, &mut outputs).is_err() {
            self.errors += 1;
        }
        self.route(index, outputs);
    }

    fn route(&mut self, index: usize, outputs: Outputs) {
        for (dst, data) in outputs.sends {
            let Some(&target) = self.by_addr.get(&dst) else {
                continue;
            };
            if self.loss > 0.0 && self.network_rng.random::<f64>() < self.loss {
                self.dropped += 1;
                continue;
            }
            let jitter = Duration::from_nanos(self.network_rng.random_range(0..=JITTER_NANOS));
            let at = self.now + LATENCY + jitter;
            self.sequence += 1;
            self.in_flight
                .push(Reverse((at, self.sequence, target, data)));
        }
        for (timer, after) in outputs.timers {
            let deadline = self.now + after;
            self.sequence += 1;
            let rank = timer_rank(&timer);
            self.nodes[index].timers.push(Reverse(QueuedTimer {
                deadline,
                rank,
                sequence: self.sequence,
                timer,
            }));
            self.wakeups.push(Reverse((deadline, self.sequence, index)));
        }
        if let Some((watched, seen)) = &mut self.watch_up {
            if outputs.up.contains(watched) {
                seen[index] = true;
            }
        }
        if let Some((watched, seen)) = &mut self.watch_down {
            if outputs.down.iter().any(|id| id.addr == *watched) {
                seen[index] = true;
            }
        }
        for id in &outputs.down {
            let current = self.by_addr.get(&id.addr).is_some_and(|&other| {
                self.nodes[other].running && self.nodes[other].foca.identity() == id
            });
            if current {
                self.false_downs += 1;
            } else {
                self.stale_downs += 1;
            }
        }
        self.rejoins += outputs.rejoins;
    }

    /// Handles every delivery and timer due at or before `until`, in order.
    fn process_until(&mut self, until: Duration) {
        loop {
            let delivery = self.in_flight.peek().map(|Reverse((at, ..))| *at);
            let wakeup = self.wakeups.peek().map(|Reverse((at, ..))| *at);
            match (delivery, wakeup) {
                (Some(at), wake) if at <= until && wake.is_none_or(|w| at <= w) => {
                    let Some(Reverse((_, _, target, data))) = self.in_flight.pop() else {
                        return;
                    };
                    self.now = at;
                    if self.nodes[target].running {
                        self.call(target, |foca, out| foca.handle_data(&data, out));
                    }
                }
                (_, Some(at)) if at <= until => {
                    let Some(Reverse((_, _, index))) = self.wakeups.pop() else {
                        return;
                    };
                    self.now = at;
                    self.fire_timers(index);
                }
                _ => break,
            }
        }
        self.now = until;
    }

    fn fire_timers(&mut self, index: usize) {
        while self.nodes[index].running {
            let due = matches!(
                self.nodes[index].timers.peek(),
                Some(Reverse(queued)) if queued.deadline <= self.now
            );
            if !due {
                return;
            }
            let Some(Reverse(queued)) = self.nodes[index].timers.pop() else {
                return;
            };
            self.call(index, |foca, out| foca.handle_timer(queued.timer, out));
        }
    }

    fn kill(&mut self, index: usize) {
        let node = &mut self.nodes[index];
        node.running = false;
        node.timers.clear();
    }

    /// Runs in `POLL` steps until `done` returns true or `limit` passes, and returns
    /// the virtual time it took, or None at the limit.
    fn run_until(&mut self, limit: Duration, done: impl Fn(&Self) -> bool) -> Option<Duration> {
        let start = self.now;
        loop {
            if done(self) {
                return Some(self.now - start);
            }
            if self.now - start >= limit {
                return None;
            }
            self.process_until(self.now + POLL);
        }
    }
}

impl Cluster {
    /// Returns whether every running node is connected and lists exactly
    /// the current identities of the other running nodes as active.
    fn is_converged(&self) -> bool {
        let running: Vec<&Node> = self.nodes.iter().filter(|node| node.running).collect();
        running.iter().all(|node| {
            node.foca.num_members() == running.len() - 1
                && node.foca.iter_members().all(|member| {
                    self.by_addr.get(&member.id().addr).is_some_and(|&other| {
                        let peer = &self.nodes[other];
                        peer.running && peer.foca.identity() == member.id()
                    })
                })
        })
    }

    /// Gives every node every other node as Alive, without broadcasting
    /// (step 1 of `run`).
    // NOTE: foca keeps members in a Vec that each update searches linearly,
    // so this takes O(N^3) time: over 20 minutes for N = 10000.
    fn bootstrap_full_membership(&mut self) {
        let size = self.nodes.len();
        let identities: Vec<NodeIdentity> = (0..size).map(|index| self.identity(index)).collect();
        for index in 0..size {
            let others: Vec<Member<NodeIdentity>> = identities
                .iter()
                .enumerate()
                .filter(|(other, _)| *other != index)
                .map(|(_, identity)| Member::alive(identity.clone()))
                .collect();
            self.call(index, |foca, out| {
                foca.apply_many(others.into_iter(), false, out)
            });
        }
    }
}

/// The settings of one run under packet loss.
#[derive(Debug, Clone)]
pub struct LossSettings {
    pub nodes: usize,
    pub seed: u64,
    /// Share of datagrams dropped during the window, from 0 to 1.
    pub loss: f64,
    /// Probe periods of loss.
    pub window_periods: u32,
    /// Probe periods without loss after the window within which the
    /// cluster must converge again.
    pub recover_periods: u32,
}

/// Runs N nodes with `Config::new_lan(N)` under packet loss and prints one
/// JSON object. It counts the MemberDown notifications about live members
/// during the loss window, each a false positive because no node fails. It
/// also counts the renewals they forced and the periods until the cluster
/// converged after the loss stopped.
pub fn run_loss(settings: &LossSettings) -> anyhow::Result<()> {
    anyhow::ensure!(settings.nodes >= 3, "the simulation needs at least 3 nodes");
    anyhow::ensure!(
        (0.0..=1.0).contains(&settings.loss),
        "invalid loss {}: expected a share from 0 to 1",
        settings.loss
    );
    let started = Instant::now();
    let mut cluster = Cluster::new(settings.nodes, settings.seed)?;
    let period = cluster.config.probe_period;
    cluster.bootstrap_full_membership();
    cluster.process_until(cluster.now + period * WARMUP_PERIODS);
    let (false_before, stale_before, rejoins_before) =
        (cluster.false_downs, cluster.stale_downs, cluster.rejoins);

    cluster.loss = settings.loss;
    cluster.process_until(cluster.now + period * settings.window_periods);
    cluster.loss = 0.0;
    let false_downs = cluster.false_downs - false_before;
    let stale_downs = cluster.stale_downs - stale_before;
    let rejoins = cluster.rejoins - rejoins_before;

    let limit = period * settings.recover_periods;
    let recovered = cluster.run_until(limit, Cluster::is_converged);
    let report = json!({
        "implementation": "rust_peer",
        "nodes": settings.nodes,
        "seed": settings.seed,
        "loss": settings.loss,
        "window_periods": settings.window_periods,
        "probe_period_seconds": period.as_secs_f64(),
        "false_downs": false_downs,
        "stale_downs": stale_downs,
        "rejoins": rejoins,
        "dropped": cluster.dropped,
        "recover_periods": recovered
            .map(|elapsed| elapsed.as_secs_f64() / period.as_secs_f64()),
        "max_recover_periods": settings.recover_periods,
        "errors": cluster.errors,
        "total_wall_seconds": started.elapsed().as_secs_f64(),
    });
    println!("{report}");
    Ok(())
}

fn all_seen(watch: &Option<(SocketAddr, Vec<bool>)>, nodes: &[Node], skip: usize) -> bool {
    let Some((_, seen)) = watch else {
        return false;
    };
    nodes
        .iter()
        .enumerate()
        .all(|(index, node)| index == skip || !node.running || seen[index])
}

/// Runs the steps in the module documentation and prints the JSON report.
pub fn run(settings: &SimSettings) -> anyhow::Result<()> {
    let size = settings.nodes;
    anyhow::ensure!(size >= 3, "the simulation needs at least 3 nodes");
    let cpu_start = process_cpu_seconds()?;
    let started = Instant::now();
    let mut cluster = Cluster::new(size, settings.seed)?;
    let period = cluster.config.probe_period;

    cluster.bootstrap_full_membership();
    let bootstrap_seconds = started.elapsed().as_secs_f64();

    cluster.process_until(cluster.now + period * WARMUP_PERIODS);
    let steady_start = Instant::now();
    let steady_cpu_start = process_cpu_seconds()?;
    cluster.process_until(cluster.now + period * settings.steady_periods);
    let steady_seconds = steady_start.elapsed().as_secs_f64();
    let steady_cpu = process_cpu_seconds()? - steady_cpu_start;

    let limit = period * settings.max_periods;
    let joiner = cluster.add_node()?;
    cluster.watch_up = Some((cluster.nodes[joiner].addr, vec![false; size + 1]));
    let seed_target = NodeIdentity::announce_target(cluster.nodes[0].addr);
    cluster.call(joiner, |foca, out| foca.announce(seed_target, out));
    let join_start = Instant::now();
    let join_cpu_start = process_cpu_seconds()?;
    let join = cluster.run_until(limit, |c| all_seen(&c.watch_up, &c.nodes, joiner));
    let join_seconds = join_start.elapsed().as_secs_f64();
    let join_cpu = process_cpu_seconds()? - join_cpu_start;

    let crashed = 1;
    cluster.watch_down = Some((cluster.nodes[crashed].addr, vec![false; size + 1]));
    cluster.kill(crashed);
    let crash_start = Instant::now();
    let crash_cpu_start = process_cpu_seconds()?;
    let crash = cluster.run_until(limit, |c| all_seen(&c.watch_down, &c.nodes, crashed));
    let crash_seconds = crash_start.elapsed().as_secs_f64();
    let crash_cpu = process_cpu_seconds()? - crash_cpu_start;

    let periods =
        |elapsed: Option<Duration>| elapsed.map(|value| value.as_secs_f64() / period.as_secs_f64());
    let per_period = |seconds: f64, elapsed: Option<Duration>| {
        let virtual_periods = elapsed.unwrap_or(limit).as_secs_f64() / period.as_secs_f64();
        seconds / virtual_periods.max(f64::MIN_POSITIVE)
    };
    let report = json!({
        "implementation": "rust_peer",
        "nodes": size,
        "seed": settings.seed,
        "bootstrap_wall_seconds": bootstrap_seconds,
        "steady_periods": settings.steady_periods,
        "steady_wall_seconds_per_period":
            steady_seconds / f64::from(settings.steady_periods.max(1)),
        "steady_cpu_seconds_per_period":
            steady_cpu / f64::from(settings.steady_periods.max(1)),
        "join_periods": periods(join),
        "join_wall_seconds_per_period": per_period(join_seconds, join),
        "join_cpu_seconds_per_period": per_period(join_cpu, join),
        "crash_periods": periods(crash),
        "crash_wall_seconds_per_period": per_period(crash_seconds, crash),
        "crash_cpu_seconds_per_period": per_period(crash_cpu, crash),
        "max_periods": settings.max_periods,
        "errors": cluster.errors,
        "total_wall_seconds": started.elapsed().as_secs_f64(),
        "total_cpu_seconds": process_cpu_seconds()? - cpu_start,
    });
    println!("{report}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timer_ranks_follow_foca_order() {
        let id = NodeIdentity::announce_target(sim_address(1).unwrap());
        let ranks = [
            timer_rank(&Timer::SendIndirectProbe {
                probed_id: id.clone(),
                token: 0,
            }),
            timer_rank(&Timer::ProbeRandomMember(0)),
            timer_rank(&Timer::ChangeSuspectToDown {
                member_id: id.clone(),
                incarnation: 0,
                token: 0,
            }),
            timer_rank(&Timer::PeriodicAnnounce(0)),
            timer_rank(&Timer::PeriodicGossip(0)),
            timer_rank(&Timer::RemoveDown(id)),
            timer_rank(&Timer::PeriodicAnnounceDown(0)),
        ];
        assert_eq!(ranks, [0, 1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn total_loss_declares_live_members_down() {
        let mut cluster = Cluster::new(5, 1).unwrap();
        cluster.bootstrap_full_membership();
        let period = cluster.config.probe_period;
        cluster.process_until(cluster.now + period * 5);
        assert!(cluster.is_converged());
        assert_eq!(cluster.false_downs, 0);

        cluster.loss = 1.0;
        cluster.process_until(cluster.now + period * 30);
        cluster.loss = 0.0;
        assert!(cluster.false_downs > 0, "no member was declared down");
        assert!(cluster.dropped > 0);
        assert!(!cluster.is_converged());
        assert_eq!(cluster.errors, 0);
    }

    #[test]
    fn small_cluster_detects_join_and_crash() {
        let mut cluster = Cluster::new(8, 3).unwrap();
        let identities: Vec<NodeIdentity> = (0..8).map(|index| cluster.identity(index)).collect();
        for index in 0..8 {
            let others: Vec<_> = identities
                .iter()
                .filter(|identity| identity.addr != cluster.nodes[index].addr)
                .cloned()
                .map(Member::alive)
                .collect();
            cluster.call(index, |foca, out| {
                foca.apply_many(others.into_iter(), false, out)
            });
        }
        let limit = cluster.config.probe_period * 60;
        let joiner = cluster.add_node().unwrap();
        cluster.watch_up = Some((cluster.nodes[joiner].addr, vec![false; 9]));
        let target = NodeIdentity::announce_target(cluster.nodes[0].addr);
        cluster.call(joiner, |foca, out| foca.announce(target, out));
        let joined = cluster.run_until(limit, |c| all_seen(&c.watch_up, &c.nodes, joiner));
        assert!(
            joined.is_some(),
            "the joiner was not reported up by every node"
        );

        cluster.watch_down = Some((cluster.nodes[1].addr, vec![false; 9]));
        cluster.kill(1);
        let detected = cluster.run_until(limit, |c| all_seen(&c.watch_down, &c.nodes, 1));
        let elapsed = detected.expect("the crash was not reported by every node");
        assert!(elapsed >= cluster.config.suspect_to_down_after);
        assert_eq!(cluster.errors, 0);
    }
}
