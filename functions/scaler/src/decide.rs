//! What the scaler does about an alarm.

use pipeline_interface::scaler::{Alarm, Decision, Situation, CHANGES_PER_DAY, DAY_S};

/// What to do about `alarm`:
/// - only an alarm going into ALARM acts; the scale-up alarm doubles, the scale-down alarm halves
///   (rounded up): `UpdateShardCount` takes each call at most to twice or half the open shards;
/// - never beyond the bounds the stack declared;
/// - never an 11th change within 24 hours: AWS allows 10 `UpdateShardCount` calls per stream in a
///   rolling day, and says when the next one is possible.
pub fn decide(alarm: &Alarm, now: u64, situation: &Situation) -> Decision {
    if alarm.new_state != "ALARM" {
        return Decision::Hold(format!("alarm {} is {}: nothing to do", alarm.name, alarm.new_state));
    }
    let open = situation.open_shards;
    let (to, direction) = if alarm.name.ends_with("-scale-up") {
        ((open * 2).min(situation.max_shards), "up")
    } else if alarm.name.ends_with("-scale-down") {
        (((open + 1) / 2).max(situation.min_shards), "down")
    } else {
        return Decision::Hold(format!("alarm {} is neither a scale-up nor a scale-down alarm", alarm.name));
    };
    if to == open {
        return Decision::Hold(format!(
            "{open} shards already at the bound for scaling {direction} ({}-{})",
            situation.min_shards, situation.max_shards
        ));
    }
    let recent: Vec<u64> = situation.changes.iter().copied().filter(|t| now.saturating_sub(*t) < DAY_S).collect();
    if recent.len() >= CHANGES_PER_DAY {
        let possible_at = recent.iter().min().copied().unwrap_or(now) + DAY_S;
        return Decision::Refuse(format!(
            "scaling {direction} from {open} to {to} shards is refused: AWS allows {CHANGES_PER_DAY} UpdateShardCount \
             calls per stream in 24 hours and this stream had {} since {}; the next is possible at {} UTC",
            recent.len(),
            pipeline_interface::scaler::utc(recent.iter().min().copied().unwrap_or(now)),
            pipeline_interface::scaler::utc(possible_at)
        ));
    }
    Decision::Scale { from: open, to, why: format!("alarm {} went into ALARM: scaling {direction}", alarm.name) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alarm(name: &str, state: &str) -> Alarm {
        Alarm { name: name.into(), new_state: state.into() }
    }

    fn situation(open: i32, changes: Vec<u64>) -> Situation {
        Situation { open_shards: open, min_shards: 1, max_shards: 16, changes }
    }

    const NOW: u64 = 1_764_500_000;

    #[test]
    fn up_doubles_and_down_halves_within_the_bounds() {
        let up = alarm("s-events-scale-up", "ALARM");
        let down = alarm("s-events-scale-down", "ALARM");
        assert!(matches!(decide(&up, NOW, &situation(1, vec![])), Decision::Scale { from: 1, to: 2, .. }));
        assert!(matches!(decide(&up, NOW, &situation(12, vec![])), Decision::Scale { to: 16, .. }), "capped at max");
        assert!(matches!(decide(&up, NOW, &situation(16, vec![])), Decision::Hold(_)));
        assert!(matches!(decide(&down, NOW, &situation(5, vec![])), Decision::Scale { to: 3, .. }), "half, rounded up");
        assert!(matches!(decide(&down, NOW, &situation(1, vec![])), Decision::Hold(_)), "never below min");
        assert!(matches!(decide(&alarm("s-events-scale-up", "OK"), NOW, &situation(1, vec![])), Decision::Hold(_)));
    }

    #[test]
    fn an_eleventh_change_within_a_day_is_refused_with_when_the_next_is_possible() {
        let up = alarm("s-events-scale-up", "ALARM");
        let ten: Vec<u64> = (0..10).map(|i| NOW - 3600 * (i + 1)).collect();
        match decide(&up, NOW, &situation(2, ten.clone())) {
            Decision::Refuse(why) => {
                assert!(why.contains("10 UpdateShardCount calls per stream in 24 hours"), "{why}");
                assert!(why.contains(&pipeline_interface::scaler::utc(NOW - 36_000 + DAY_S)), "{why}");
            }
            other => panic!("an 11th change must be refused: {other:?}"),
        }
        let old: Vec<u64> = ten.iter().map(|t| t - DAY_S).collect();
        assert!(matches!(decide(&up, NOW, &situation(2, old)), Decision::Scale { .. }), "older changes do not count");
    }
}
