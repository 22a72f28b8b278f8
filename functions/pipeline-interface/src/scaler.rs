//! What the `scaler`'s logic is given about an alarm and the stream, and what it decides.

/// How many `UpdateShardCount` calls AWS allows per stream in a rolling 24 hours.
pub const CHANGES_PER_DAY: usize = 10;
/// Seconds in a day.
pub const DAY_S: u64 = 24 * 3600;

/// The alarm a notification is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alarm {
    pub name: String,
    /// `ALARM`, `OK` or `INSUFFICIENT_DATA`.
    pub new_state: String,
}

/// The stream as it is, its bounds, and the changes of the last day (Unix seconds).
#[derive(Debug, Clone)]
pub struct Situation {
    pub open_shards: i32,
    pub min_shards: i32,
    pub max_shards: i32,
    pub changes: Vec<u64>,
}

/// What the logic decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Scale {
        from: i32,
        to: i32,
        why: String,
    },
    /// Nothing to do, and why.
    Hold(String),
    /// A change AWS's rules forbid now, and why.
    Refuse(String),
}

/// The logic: an alarm, the time (Unix seconds), the situation -> what to do.
pub type Decide = fn(&Alarm, u64, &Situation) -> Decision;

/// `YYYY-MM-DD HH:MM` of Unix seconds, UTC.
pub fn utc(unix: u64) -> String {
    let (days, seconds) = ((unix / 86_400) as i64, unix % 86_400);
    let z = days + 719_468;
    let (era, doe) = (z.div_euclid(146_097), z.rem_euclid(146_097));
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}", seconds / 3600, seconds % 3600 / 60)
}
