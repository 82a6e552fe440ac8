//! Wall time by phase of a long job (a night: state update, cohort, features, scoring,
//! ranking, outputs), for the log, the command's summary and the benchmarks' split. An operator
//! whose night got slower sees which phase did, without a profiler.

use std::time::Instant;

/// Phases in the order they ran, each with its wall seconds; a phase named twice adds up.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Phases(Vec<(&'static str, f64)>);

impl Phases {
    /// Adds `secs` to phase `name`.
    pub fn add(&mut self, name: &'static str, secs: f64) {
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some((_, s)) => *s += secs,
            None => self.0.push((name, secs)),
        }
    }

    /// Adds the time since `start` to `name` and returns now, the next phase's start.
    pub fn since(&mut self, name: &'static str, start: Instant) -> Instant {
        let now = Instant::now();
        self.add(name, now.duration_since(start).as_secs_f64());
        now
    }

    pub fn get(&self, name: &str) -> Option<f64> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'static str, f64)> + '_ {
        self.0.iter().copied()
    }

    /// One line: `state 0.10 s, features 5.21 s, …`.
    pub fn summary(&self) -> String {
        self.0
            .iter()
            .map(|(n, s)| format!("{n} {s:.2} s"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phase_named_twice_adds_up_and_order_is_kept() {
        let mut p = Phases::default();
        p.add("features", 1.0);
        p.add("scoring", 0.5);
        p.add("features", 2.0);
        assert_eq!(p.get("features"), Some(3.0));
        assert_eq!(
            p.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            vec!["features", "scoring"]
        );
        assert_eq!(p.summary(), "features 3.00 s, scoring 0.50 s");
    }
}
