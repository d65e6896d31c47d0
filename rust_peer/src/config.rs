//! The `--config` presets, the `--set FIELD=VALUE` overrides and the checks on
//! the resulting foca `Config`.
//!
//! Durations are whole milliseconds on the command line. Periodic tasks are
//! `off` or `FREQUENCY_MS:NUM_MEMBERS`.

use std::fmt;
use std::num::{NonZeroU32, NonZeroU8, NonZeroUsize};
use std::str::FromStr;
use std::time::Duration;

use foca::{Config, PeriodicParams};
use serde_json::{json, Value};

/// The smallest accepted `max_packet_size`. A Ping or PingReq header between
/// two IPv6 identities with empty ids fits in it (a unit test checks this),
/// so only a longer id can make a header too big to send.
pub const MIN_PACKET_SIZE: usize = 128;

/// The largest accepted `max_packet_size`: a UDP payload cannot be longer.
pub const MAX_PACKET_SIZE: usize = 65_535;

/// The field names that `--set` accepts, in the order the ready line lists them.
pub const FIELDS: [&str; 11] = [
    "probe_period_ms",
    "probe_rtt_ms",
    "num_indirect_probes",
    "max_transmissions",
    "suspect_to_down_after_ms",
    "remove_down_after_ms",
    "max_packet_size",
    "notify_down_members",
    "periodic_announce",
    "periodic_announce_to_down_members",
    "periodic_gossip",
];

/// A `--config` value: which foca constructor builds the base config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// `Config::simple()`.
    Simple,
    /// `Config::new_lan(cluster_size)`.
    Lan(NonZeroU32),
    /// `Config::new_wan(cluster_size)`.
    Wan(NonZeroU32),
}

impl Preset {
    pub fn config(self) -> Config {
        match self {
            Self::Simple => Config::simple(),
            Self::Lan(cluster_size) => Config::new_lan(cluster_size),
            Self::Wan(cluster_size) => Config::new_wan(cluster_size),
        }
    }
}

impl FromStr for Preset {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text == "simple" {
            return Ok(Self::Simple);
        }
        let (name, size) = text
            .split_once(':')
            .ok_or_else(|| format!("expected simple, lan:N or wan:N, got '{text}'"))?;
        let size = size.parse::<NonZeroU32>().map_err(|_| {
            format!(
                "cluster size in '{text}' must be a whole number from 1 to {}",
                u32::MAX
            )
        })?;
        match name {
            "lan" => Ok(Self::Lan(size)),
            "wan" => Ok(Self::Wan(size)),
            _ => Err(format!("expected simple, lan:N or wan:N, got '{text}'")),
        }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Simple => formatter.write_str("simple"),
            Self::Lan(size) => write!(formatter, "lan:{size}"),
            Self::Wan(size) => write!(formatter, "wan:{size}"),
        }
    }
}

/// One parsed `--set FIELD=VALUE`.
#[derive(Debug, Clone)]
pub enum Override {
    ProbePeriod(Duration),
    ProbeRtt(Duration),
    NumIndirectProbes(NonZeroUsize),
    MaxTransmissions(NonZeroU8),
    SuspectToDownAfter(Duration),
    RemoveDownAfter(Duration),
    MaxPacketSize(NonZeroUsize),
    NotifyDownMembers(bool),
    PeriodicAnnounce(Option<PeriodicParams>),
    PeriodicAnnounceToDownMembers(Option<PeriodicParams>),
    PeriodicGossip(Option<PeriodicParams>),
}

impl Override {
    fn apply(&self, config: &mut Config) {
        match self {
            Self::ProbePeriod(value) => config.probe_period = *value,
            Self::ProbeRtt(value) => config.probe_rtt = *value,
            Self::NumIndirectProbes(value) => config.num_indirect_probes = *value,
            Self::MaxTransmissions(value) => config.max_transmissions = *value,
            Self::SuspectToDownAfter(value) => config.suspect_to_down_after = *value,
            Self::RemoveDownAfter(value) => config.remove_down_after = *value,
            Self::MaxPacketSize(value) => config.max_packet_size = *value,
            Self::NotifyDownMembers(value) => config.notify_down_members = *value,
            Self::PeriodicAnnounce(value) => config.periodic_announce = value.clone(),
            Self::PeriodicAnnounceToDownMembers(value) => {
                config.periodic_announce_to_down_members = value.clone();
            }
            Self::PeriodicGossip(value) => config.periodic_gossip = value.clone(),
        }
    }
}

impl FromStr for Override {
    type Err = String;

    /// Parses `FIELD=VALUE`. The error names the field and states the allowed
    /// values; clap adds the flag and the whole argument.
    fn from_str(text: &str) -> Result<Self, String> {
        let (field, value) = text
            .split_once('=')
            .ok_or_else(|| format!("expected FIELD=VALUE, got '{text}'"))?;
        let parsed = match field {
            "probe_period_ms" => Self::ProbePeriod(parse_millis(field, value)?),
            "probe_rtt_ms" => Self::ProbeRtt(parse_millis(field, value)?),
            "num_indirect_probes" => Self::NumIndirectProbes(parse_indirect_probes(field, value)?),
            "max_transmissions" => Self::MaxTransmissions(parse_transmissions(field, value)?),
            "suspect_to_down_after_ms" => Self::SuspectToDownAfter(parse_millis(field, value)?),
            "remove_down_after_ms" => Self::RemoveDownAfter(parse_millis(field, value)?),
            "max_packet_size" => Self::MaxPacketSize(parse_packet_size(value)?),
            "notify_down_members" => Self::NotifyDownMembers(parse_bool(field, value)?),
            "periodic_announce" => Self::PeriodicAnnounce(parse_periodic(field, value)?),
            "periodic_announce_to_down_members" => {
                Self::PeriodicAnnounceToDownMembers(parse_periodic(field, value)?)
            }
            "periodic_gossip" => Self::PeriodicGossip(parse_periodic(field, value)?),
            _ => {
                return Err(format!(
                    "unknown field '{field}'; expected one of: {}",
                    FIELDS.join(", ")
                ))
            }
        };
        Ok(parsed)
    }
}

fn parse_millis(field: &str, value: &str) -> Result<Duration, String> {
    match value.parse::<u64>() {
        Ok(millis) if millis > 0 => Ok(Duration::from_millis(millis)),
        _ => Err(format!(
            "{field} must be a whole number of milliseconds from 1 to {}, got '{value}'",
            u64::MAX
        )),
    }
}

/// Parses a count from 1 to `max`.
fn parse_count(field: &str, value: &str, max: usize) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(count) if (1..=max).contains(&count) => Ok(count),
        _ => Err(format!(
            "{field} must be a whole number from 1 to {max}, got '{value}'"
        )),
    }
}

fn parse_indirect_probes(field: &str, value: &str) -> Result<NonZeroUsize, String> {
    let count = parse_count(field, value, usize::MAX)?;
    Ok(NonZeroUsize::new(count).expect("parse_count returns at least 1"))
}

fn parse_transmissions(field: &str, value: &str) -> Result<NonZeroU8, String> {
    let count = parse_count(field, value, usize::from(u8::MAX))?;
    let count = u8::try_from(count).expect("parse_count returns at most u8::MAX");
    Ok(NonZeroU8::new(count).expect("parse_count returns at least 1"))
}

fn parse_packet_size(value: &str) -> Result<NonZeroUsize, String> {
    match value.parse::<usize>() {
        Ok(size) if (MIN_PACKET_SIZE..=MAX_PACKET_SIZE).contains(&size) => {
            Ok(NonZeroUsize::new(size).expect("size is at least MIN_PACKET_SIZE"))
        }
        _ => Err(format!(
            "max_packet_size must be a whole number of bytes from {MIN_PACKET_SIZE} to \
             {MAX_PACKET_SIZE}, got '{value}'"
        )),
    }
}

fn parse_bool(field: &str, value: &str) -> Result<bool, String> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("{field} must be true or false, got '{value}'")),
    }
}

fn parse_periodic(field: &str, value: &str) -> Result<Option<PeriodicParams>, String> {
    if value == "off" {
        return Ok(None);
    }
    let invalid = || {
        format!(
            "{field} must be off or FREQUENCY_MS:NUM_MEMBERS with both numbers at least 1, \
             got '{value}'"
        )
    };
    let (frequency, num_members) = value.split_once(':').ok_or_else(invalid)?;
    let frequency = match frequency.parse::<u64>() {
        Ok(millis) if millis > 0 => Duration::from_millis(millis),
        _ => return Err(invalid()),
    };
    let num_members = num_members.parse::<NonZeroUsize>().map_err(|_| invalid())?;
    Ok(Some(PeriodicParams {
        frequency,
        num_members,
    }))
}

/// Builds the preset's config, applies the overrides in order, and checks
/// the rules that span fields or that a preset could break.
pub fn build(preset: Preset, overrides: &[Override]) -> Result<Config, String> {
    let mut config = preset.config();
    for value in overrides {
        value.apply(&mut config);
    }
    validate(&config)?;
    Ok(config)
}

/// Checks the constraints that foca documents but does not enforce.
///
/// The `--set` parser and the preset constructors already enforce the
/// single-field rules (non-zero counts and durations, the packet size range).
/// They are checked again here, so a config built any other way gets the
/// same treatment.
pub fn validate(config: &Config) -> Result<(), String> {
    let durations = [
        ("probe_period_ms", config.probe_period),
        ("probe_rtt_ms", config.probe_rtt),
        ("suspect_to_down_after_ms", config.suspect_to_down_after),
        ("remove_down_after_ms", config.remove_down_after),
    ];
    for (field, duration) in durations {
        if duration.is_zero() {
            return Err(format!(
                "invalid {field}=0: it must be at least 1. Change it with --set {field}=N"
            ));
        }
    }

    if config.probe_rtt >= config.probe_period {
        return Err(format!(
            "invalid probe_rtt_ms={}: it must be less than probe_period_ms, which is {}. \
             Change either with --set",
            duration_text(config.probe_rtt),
            duration_text(config.probe_period),
        ));
    }

    let size = config.max_packet_size.get();
    if !(MIN_PACKET_SIZE..=MAX_PACKET_SIZE).contains(&size) {
        return Err(format!(
            "invalid max_packet_size={size}: expected {MIN_PACKET_SIZE} to {MAX_PACKET_SIZE}"
        ));
    }

    let periodic = [
        ("periodic_announce", &config.periodic_announce),
        (
            "periodic_announce_to_down_members",
            &config.periodic_announce_to_down_members,
        ),
        ("periodic_gossip", &config.periodic_gossip),
    ];
    for (field, params) in periodic {
        if params.as_ref().is_some_and(|p| p.frequency.is_zero()) {
            return Err(format!(
                "invalid {field}: its frequency is 0 ms; expected off or FREQUENCY_MS:NUM_MEMBERS \
                 with FREQUENCY_MS at least 1"
            ));
        }
    }
    Ok(())
}

/// Lists every `--set` field with the value in force, for the ready line.
/// Durations are in milliseconds, and fractional only where a preset computed
/// them that way (`suspect_to_down_after` in `lan:N` and `wan:N` for N above
/// 10). Periodic tasks use the `--set` syntax.
pub fn to_json(config: &Config) -> Value {
    json!({
        "probe_period_ms": duration_json(config.probe_period),
        "probe_rtt_ms": duration_json(config.probe_rtt),
        "num_indirect_probes": config.num_indirect_probes.get(),
        "max_transmissions": config.max_transmissions.get(),
        "suspect_to_down_after_ms": duration_json(config.suspect_to_down_after),
        "remove_down_after_ms": duration_json(config.remove_down_after),
        "max_packet_size": config.max_packet_size.get(),
        "notify_down_members": config.notify_down_members,
        "periodic_announce": periodic_text(config.periodic_announce.as_ref()),
        "periodic_announce_to_down_members":
            periodic_text(config.periodic_announce_to_down_members.as_ref()),
        "periodic_gossip": periodic_text(config.periodic_gossip.as_ref()),
    })
}

/// Converts a duration to milliseconds: an integer when whole, else a float.
fn duration_json(duration: Duration) -> Value {
    if duration.subsec_nanos() % 1_000_000 == 0 {
        json!(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
    } else {
        json!(duration.as_secs_f64() * 1000.0)
    }
}

fn duration_text(duration: Duration) -> String {
    duration_json(duration).to_string()
}

fn periodic_text(params: Option<&PeriodicParams>) -> String {
    match params {
        None => "off".to_owned(),
        Some(params) => format!("{}:{}", duration_text(params.frequency), params.num_members),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(text: &str) -> Result<Override, String> {
        text.parse()
    }

    #[test]
    fn presets_parse() {
        assert_eq!("simple".parse::<Preset>(), Ok(Preset::Simple));
        assert_eq!(
            "lan:10".parse::<Preset>(),
            Ok(Preset::Lan(NonZeroU32::new(10).unwrap()))
        );
        assert_eq!(
            "wan:3".parse::<Preset>(),
            Ok(Preset::Wan(NonZeroU32::new(3).unwrap()))
        );
    }

    #[test]
    fn presets_reject_bad_values() {
        for text in [
            "lan:0", "wan:0", "lan:", "lan:-1", "lan:x", "lan", "mesh:3", "",
        ] {
            assert!(text.parse::<Preset>().is_err(), "{text}");
        }
    }

    #[test]
    fn preset_config_matches_foca() {
        let lan = Preset::Lan(NonZeroU32::new(100).unwrap()).config();
        assert_eq!(lan.probe_period, Duration::from_secs(1));
        assert_eq!(lan.max_transmissions.get(), 8);
        assert_eq!(lan.suspect_to_down_after, Duration::from_secs(8));
        let wan = Preset::Wan(NonZeroU32::new(1).unwrap()).config();
        assert_eq!(wan.probe_rtt, Duration::from_secs(3));
        assert!(!Preset::Simple.config().notify_down_members);
    }

    #[test]
    fn overrides_apply_in_order() {
        let overrides = [
            set("probe_period_ms=2000").unwrap(),
            set("probe_rtt_ms=400").unwrap(),
            set("num_indirect_probes=5").unwrap(),
            set("max_transmissions=7").unwrap(),
            set("suspect_to_down_after_ms=900").unwrap(),
            set("remove_down_after_ms=60000").unwrap(),
            set("max_packet_size=512").unwrap(),
            set("notify_down_members=true").unwrap(),
            set("periodic_announce=1000:2").unwrap(),
            set("periodic_announce_to_down_members=off").unwrap(),
            set("periodic_gossip=250:3").unwrap(),
            set("probe_rtt_ms=300").unwrap(),
        ];

        let config = build(Preset::Simple, &overrides).unwrap();
        assert_eq!(config.probe_period, Duration::from_millis(2000));
        assert_eq!(config.probe_rtt, Duration::from_millis(300));
        assert_eq!(config.num_indirect_probes.get(), 5);
        assert_eq!(config.max_transmissions.get(), 7);
        assert_eq!(config.suspect_to_down_after, Duration::from_millis(900));
        assert_eq!(config.remove_down_after, Duration::from_secs(60));
        assert_eq!(config.max_packet_size.get(), 512);
        assert!(config.notify_down_members);

        let announce = config.periodic_announce.as_ref().unwrap();
        assert_eq!(announce.frequency, Duration::from_secs(1));
        assert_eq!(announce.num_members.get(), 2);
        assert!(config.periodic_announce_to_down_members.is_none());
        assert_eq!(
            config.periodic_gossip.as_ref().unwrap().num_members.get(),
            3
        );
    }

    #[test]
    fn periodic_off_disables_preset_task() {
        let overrides = [set("periodic_gossip=off").unwrap()];
        let config = build(Preset::Lan(NonZeroU32::new(5).unwrap()), &overrides).unwrap();
        assert!(config.periodic_gossip.is_none());
        assert!(config.periodic_announce.is_some());
    }

    #[test]
    fn overrides_reject_bad_values() {
        let cases = [
            "probe_period_ms=0",
            "probe_period_ms=-5",
            "probe_period_ms=1.5",
            "probe_rtt_ms=",
            "suspect_to_down_after_ms=0",
            "remove_down_after_ms=0",
            "num_indirect_probes=0",
            "max_transmissions=0",
            "max_transmissions=256",
            "max_packet_size=127",
            "max_packet_size=65536",
            "max_packet_size=0",
            "notify_down_members=yes",
            "notify_down_members=1",
            "periodic_gossip=0:3",
            "periodic_gossip=200:0",
            "periodic_gossip=200",
            "periodic_gossip=on",
            "no_such_field=1",
            "probe_period_ms",
        ];
        for text in cases {
            assert!(set(text).is_err(), "{text}");
        }
    }

    #[test]
    fn override_error_names_field_and_range() {
        let err = set("max_transmissions=0").unwrap_err();
        assert!(err.contains("max_transmissions"), "{err}");
        assert!(err.contains("1 to 255"), "{err}");
        assert!(err.contains("'0'"), "{err}");
    }

    #[test]
    fn rejects_rtt_not_below_period() {
        for rtt in ["1500", "2000"] {
            let overrides = [set(&format!("probe_rtt_ms={rtt}")).unwrap()];
            let err = build(Preset::Simple, &overrides).unwrap_err();
            assert!(err.contains("probe_rtt_ms"), "{err}");
            assert!(err.contains("probe_period_ms"), "{err}");
        }
        // wan has probe_rtt 3 s, so a shorter period breaks the rule.
        let overrides = [set("probe_period_ms=2000").unwrap()];
        assert!(build(Preset::Wan(NonZeroU32::new(3).unwrap()), &overrides).is_err());
    }

    #[test]
    fn validate_rejects_zero_duration() {
        let mut config = Config::simple();
        config.suspect_to_down_after = Duration::ZERO;
        assert!(validate(&config)
            .unwrap_err()
            .contains("suspect_to_down_after_ms"));

        let mut config = Config::simple();
        config.periodic_gossip = Some(PeriodicParams {
            frequency: Duration::ZERO,
            num_members: NonZeroUsize::new(1).unwrap(),
        });
        assert!(validate(&config).unwrap_err().contains("periodic_gossip"));
    }

    #[test]
    fn json_lists_every_field() {
        let value = to_json(&Config::new_lan(NonZeroU32::new(20).unwrap()));
        let object = value.as_object().unwrap();
        let keys: Vec<_> = object.keys().map(String::as_str).collect();
        let mut expected = FIELDS.to_vec();
        expected.sort_unstable();
        let mut sorted_keys = keys.clone();
        sorted_keys.sort_unstable();
        assert_eq!(sorted_keys, expected);

        assert_eq!(object["probe_period_ms"], json!(1000));
        assert_eq!(object["periodic_gossip"], json!("200:3"));
        assert_eq!(object["periodic_announce"], json!("30000:1"));
        assert_eq!(object["notify_down_members"], json!(true));
        let suspect = object["suspect_to_down_after_ms"].as_f64().unwrap();
        assert!((suspect - 5204.12).abs() < 0.01, "{suspect}");
    }

    #[test]
    fn json_shows_off_for_disabled_tasks() {
        let value = to_json(&Config::simple());
        assert_eq!(value["periodic_announce"], json!("off"));
        assert_eq!(value["remove_down_after_ms"], json!(86_400_000));
    }

    #[test]
    fn smallest_packet_fits_ipv6_header() {
        use crate::codec::ProtoCodec;
        use crate::identity::NodeIdentity;
        use foca::{Codec, Header, Message};

        let identity = NodeIdentity::new(
            Vec::new(),
            "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"
                .parse()
                .unwrap(),
            u64::MAX,
        );
        for message in [
            Message::Ping(255),
            Message::PingReq {
                target: identity.clone(),
                probe_number: 255,
            },
        ] {
            let header = Header {
                src: identity.clone(),
                src_incarnation: u16::MAX,
                dst: identity.clone(),
                message,
            };
            let mut buf = Vec::new();
            ProtoCodec.encode_header(&header, &mut buf).unwrap();
            assert!(
                buf.len() <= MIN_PACKET_SIZE,
                "header is {} bytes",
                buf.len()
            );
        }
    }
}
