//! What day it is, for ingest: in the agencies' time zone, read afresh for every batch.
//!
//! A long-running daemon must not fix its day when it starts. The day a record arrives decides
//! two things: whether a date in it lies in the future (SPEC §1: not after the ingest day plus
//! one) and, when the record has no `reported_on`, its knowledge date. Agencies work in Korean
//! time, so midnight is midnight in `Asia/Seoul` (configurable: `ingest.time_zone`), not UTC and
//! not the server's local zone.
//!
//! The clock is injectable so a test can run a daemon across midnights without waiting for one.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

/// A source of the current instant.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that shows what it was last set to: for tests and replays.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(at: DateTime<Utc>) -> ManualClock {
        ManualClock(Mutex::new(at))
    }

    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = at;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The ingest day: fixed (a replay of history, `--ingest-day`) or read from a clock in a time
/// zone at every use.
#[derive(Clone)]
pub enum IngestDay {
    Fixed(NaiveDate),
    Clock { clock: Arc<dyn Clock>, zone: Tz },
}

impl std::fmt::Debug for IngestDay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IngestDay::Fixed(d) => write!(f, "Fixed({d})"),
            IngestDay::Clock { zone, .. } => write!(f, "Clock({zone})"),
        }
    }
}

impl IngestDay {
    /// The system clock in `zone`.
    pub fn system(zone: Tz) -> IngestDay {
        IngestDay::Clock {
            clock: Arc::new(SystemClock),
            zone,
        }
    }

    /// Today, as the agencies count days.
    pub fn today(&self) -> NaiveDate {
        match self {
            IngestDay::Fixed(d) => *d,
            IngestDay::Clock { clock, zone } => clock.now().with_timezone(zone).date_naive(),
        }
    }

    /// The current instant (for `ingested_at`): the clock's, or the system's for a fixed day.
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            IngestDay::Fixed(_) => Utc::now(),
            IngestDay::Clock { clock, .. } => clock.now(),
        }
    }
}

/// Parses a time-zone name (`Asia/Seoul`, `UTC`), with an error that says what is expected.
pub fn parse_zone(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>().map_err(|_| {
        format!("`{name}` is not a time-zone name; use an IANA name such as Asia/Seoul or UTC")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_day_turns_at_midnight_in_seoul_not_in_utc() {
        // 14:59 UTC is 23:59 in Seoul; 15:00 UTC is midnight there.
        let clock = Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 11, 1, 14, 59, 0).unwrap(),
        ));
        let day = IngestDay::Clock {
            clock: clock.clone(),
            zone: parse_zone("Asia/Seoul").unwrap(),
        };
        assert_eq!(day.today(), NaiveDate::from_ymd_opt(2026, 11, 1).unwrap());
        clock.set(Utc.with_ymd_and_hms(2026, 11, 1, 15, 0, 0).unwrap());
        assert_eq!(day.today(), NaiveDate::from_ymd_opt(2026, 11, 2).unwrap());
        assert!(parse_zone("Mars/Olympus").is_err());
    }
}
