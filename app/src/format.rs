//! Times as the pages show them: `HH:MM:SS UTC`, the same text on the server and in the browser
//! whatever their time zones, so hydration never disagrees.

pub fn utc_time(epoch_secs: u64) -> String {
    let secs = epoch_secs % 86_400;
    format!("{:02}:{:02}:{:02} UTC", secs / 3600, secs / 60 % 60, secs % 60)
}

/// [`utc_time`] of a browser timestamp in milliseconds.
pub fn utc_time_ms(epoch_ms: f64) -> String {
    utc_time((epoch_ms / 1000.0).max(0.0) as u64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_are_utc_clock_faces() {
        assert_eq!(super::utc_time(86_400 + 3_661), "01:01:01 UTC");
        assert_eq!(super::utc_time_ms(59_999.0), "00:00:59 UTC");
    }
}
