//! A Kinesis stream's capacity, by AWS's limits for a provisioned Kinesis stream: each shard takes
//! 1,000 records/s and 1 MiB/s of writes, and serves 2 MiB/s of reads shared by every consumer
//! that does not use enhanced fan-out. A record counts as its size rounded up to 1 KiB. Sized
//! for a target rate, the stream gets the shards that put the target at 75 % of its capacity
//! (headroom for bursts), and the plan says which limit decided it. Pure: no I/O.

/// Records per second one shard takes.
pub const RECORDS_PER_SHARD: f64 = 1000.0;
/// KiB per second written to one shard.
pub const WRITE_KIB_PER_SHARD: f64 = 1024.0;
/// KiB per second read from one shard, shared by the consumers without enhanced fan-out.
pub const READ_KIB_PER_SHARD: f64 = 2048.0;
/// The share of capacity a target may take.
pub const HEADROOM: f64 = 0.75;
/// The most shards a stream may have here (a request to AWS to raise the account's 500 shards
/// per region is the user's).
pub const MAX_SHARDS: i32 = 500;

/// How many shards, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Sizing {
    pub shards: i32,
    pub why: String,
}

/// A record's size as Kinesis counts it: rounded up to 1 KiB.
pub fn kib_of(record_bytes: u32) -> f64 {
    f64::from(record_bytes.max(1).div_ceil(1024))
}

/// The shards that keep `records_per_s` records of `record_bytes` at 75 % of capacity, read by
/// `shared_readers` consumers without enhanced fan-out.
pub fn shards_for(records_per_s: f64, record_bytes: u32, shared_readers: u32) -> Sizing {
    let kib = kib_of(record_bytes);
    let rate = format!("{} records/s x {} KiB", number(records_per_s), number(kib));
    let limits = [
        (records_per_s / (HEADROOM * RECORDS_PER_SHARD), format!("{rate} at 75 % of 1000/s per shard")),
        (records_per_s * kib / (HEADROOM * WRITE_KIB_PER_SHARD), format!("{rate} at 75 % of 1 MiB/s per shard")),
        (
            f64::from(shared_readers) * records_per_s * kib / (HEADROOM * READ_KIB_PER_SHARD),
            format!("{rate} read by {shared_readers} consumers at 75 % of 2 MiB/s per shard"),
        ),
    ];
    // The first of the limits that needs the most shards decides (records, then bytes, then reads).
    let (needed, why) =
        limits.into_iter().fold((0.0, String::new()), |best, limit| if limit.0 > best.0 { limit } else { best });
    let shards = (needed.ceil() as i32).max(1);
    Sizing { shards, why: format!("{shards} shard{}: {why}", if shards == 1 { "" } else { "s" }) }
}

/// How much of a stream's capacity a measured load takes: the larger of records and bytes
/// written against `shards` shards, as a fraction.
pub fn utilization(records_per_s: f64, bytes_per_s: f64, shards: i32) -> f64 {
    let shards = f64::from(shards.max(1));
    (records_per_s / (RECORDS_PER_SHARD * shards)).max(bytes_per_s / (WRITE_KIB_PER_SHARD * 1024.0 * shards))
}

/// The threshold of an alarm on the stream's usage per minute, in "record equivalents" (records,
/// or bytes / 1048.576: 1 MiB/s is 1,000 of them), at `share` of `shards` shards' capacity.
pub fn alarm_threshold(shards: i32, share: f64) -> f64 {
    share * RECORDS_PER_SHARD * 60.0 * f64::from(shards)
}

fn number(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_counted_in_whole_kib() {
        assert_eq!(kib_of(1), 1.0);
        assert_eq!(kib_of(1024), 1.0);
        assert_eq!(kib_of(1025), 2.0);
        assert_eq!(kib_of(0), 1.0, "an empty record still counts as 1 KiB");
    }

    #[test]
    fn the_issues_example_gives_four_shards_for_the_records() {
        let sizing = shards_for(3000.0, 1024, 2);
        assert_eq!(
            sizing,
            Sizing { shards: 4, why: "4 shards: 3000 records/s x 1 KiB at 75 % of 1000/s per shard".into() }
        );
    }

    #[test]
    fn each_limit_decides_at_and_around_it() {
        // Records: 750/s is exactly 75 % of one shard; one more needs a second.
        assert_eq!(shards_for(750.0, 100, 1).shards, 1);
        assert_eq!(shards_for(751.0, 100, 1).shards, 2);
        // Bytes: 768 KiB/s is 75 % of 1 MiB/s.
        let bytes = shards_for(384.0, 2048, 1);
        assert_eq!(bytes.shards, 1, "{bytes:?}");
        let bytes = shards_for(385.0, 2048, 1);
        assert_eq!((bytes.shards, bytes.why.contains("1 MiB/s")), (2, true), "{bytes:?}");
        // Reads: three consumers sharing 2 MiB/s at 600 KiB/s each need a second shard.
        let reads = shards_for(600.0, 1024, 3);
        assert_eq!((reads.shards, reads.why.contains("read by 3 consumers")), (2, true), "{reads:?}");
        assert_eq!(shards_for(600.0, 1024, 2).shards, 1);
        // The issue's seed: 100 devices x 10 puts/s of 1 KB: one shard is not enough at 75 %.
        assert_eq!(shards_for(1000.0, 1000, 1).shards, 2);
        assert_eq!(shards_for(0.0, 1, 1).shards, 1);
    }

    #[test]
    fn utilization_is_the_busier_of_records_and_bytes() {
        assert!((utilization(620.0, 620.0 * 200.0, 1) - 0.62).abs() < 1e-9);
        assert!((utilization(1240.0, 0.0, 2) - 0.62).abs() < 1e-9);
        assert!((utilization(10.0, 1_048_576.0, 2) - 0.5).abs() < 1e-9);
        assert_eq!(alarm_threshold(4, 0.75), 180_000.0);
    }
}
