//! Fault injection, for tests of exactness: with `CHAOS_CRASH_RATE` = R (0 <= R < 1), each
//! invocation of the mapper or the reducer fails with probability R at a point chosen at random
//! among the points between its steps: before its first write, after a write, after a message
//! sent. The failed invocation's messages are delivered again, as after a crash: whatever it had
//! written stays. Off (R = 0) unless set; the rate is logged at cold start.

/// The rate, read once at cold start.
#[derive(Debug, Clone, Copy)]
pub struct Chaos {
    rate: f64,
}

impl Chaos {
    /// Reads `CHAOS_CRASH_RATE` (absent: off) and says so when it is on.
    pub fn from_env() -> Result<Self, String> {
        let rate = match std::env::var("CHAOS_CRASH_RATE") {
            Ok(text) if !text.is_empty() => {
                text.parse::<f64>().map_err(|e| format!("CHAOS_CRASH_RATE `{text}`: {e}"))?
            }
            _ => 0.0,
        };
        if !(0.0..1.0).contains(&rate) {
            return Err(format!("CHAOS_CRASH_RATE must be at least 0 and below 1, not {rate}"));
        }
        if rate > 0.0 {
            tracing::warn!(
                crash_rate = rate,
                "chaos is on: each invocation fails with this probability at a random point of its work"
            );
        }
        Ok(Self { rate })
    }

    /// The crash (if any) of one invocation with about `steps` points between steps.
    pub fn invocation(&self, steps: usize) -> Crash {
        let at = (self.rate > 0.0 && fastrand::f64() < self.rate).then(|| fastrand::usize(..=steps));
        Crash { at, passed: 0 }
    }
}

/// Where one invocation crashes, if it does.
#[derive(Debug)]
pub struct Crash {
    at: Option<usize>,
    passed: usize,
}

impl Crash {
    /// A point between two steps; `what` says where, for the log. Fails the invocation when it is
    /// the chosen point.
    pub fn point(&mut self, what: &str) -> Result<(), String> {
        if self.at == Some(self.passed) {
            return Err(format!("chaos: the invocation crashed {what}"));
        }
        self.passed += 1;
        Ok(())
    }

    /// The end of the invocation: a crash chosen past its last point happens here.
    pub fn end(&self) -> Result<(), String> {
        match self.at {
            Some(at) if at >= self.passed => Err("chaos: the invocation crashed after all its steps".into()),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_never_crashes_and_on_crashes_about_as_often_as_asked() {
        let off = Chaos { rate: 0.0 };
        assert!((0..1000).all(|_| off.invocation(3).at.is_none()));
        let on = Chaos { rate: 0.3 };
        let crashed = (0..10_000).filter(|_| on.invocation(3).at.is_some()).count();
        assert!((2_500..3_500).contains(&crashed), "{crashed} of 10000");
    }

    #[test]
    fn a_chosen_point_fails_once_reached_and_a_late_one_at_the_end() {
        let mut crash = Crash { at: Some(1), passed: 0 };
        assert!(crash.point("before").is_ok());
        assert!(crash.point("after a write").unwrap_err().contains("after a write"));
        let mut late = Crash { at: Some(5), passed: 0 };
        assert!(late.point("a").is_ok() && late.point("b").is_ok());
        assert!(late.end().is_err());
        assert!(Crash { at: None, passed: 0 }.end().is_ok());
    }
}
