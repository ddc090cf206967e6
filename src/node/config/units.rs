//! Human units in config values: sizes (`64MiB`) and durations (`30s`).

use std::time::Duration;

/// Parses a byte size: a plain number, or a number with B, KB/KiB, MB/MiB, GB/GiB.
pub fn parse_size(value: &str) -> Result<u64, String> {
    let v = value.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{value:?} is not a size like 64MiB"))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" => 1_000,
        "KiB" => 1 << 10,
        "MB" => 1_000_000,
        "MiB" => 1 << 20,
        "GB" => 1_000_000_000,
        "GiB" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit {other:?} in {value:?}; use B, KiB, MiB or GiB"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{value:?} is too large"))
}

/// Parses a duration like `30s`, `5m`, `1h 30m`.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(value)
        .map_err(|e| format!("{value:?} is not a duration like 30s: {e}"))?;
    if d.is_zero() {
        return Err(format!("{value:?} must be longer than zero"));
    }
    Ok(d)
}
