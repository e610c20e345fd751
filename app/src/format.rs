//! Times as the pages show them: `HH:MM:SS UTC`, the same text on the server and in the browser
//! whatever their time zones, so hydration never disagrees; countdowns and spans.

pub fn utc_time(epoch_secs: u64) -> String {
    let secs = epoch_secs % 86_400;
    format!("{:02}:{:02}:{:02} UTC", secs / 3600, secs / 60 % 60, secs % 60)
}

/// [`utc_time`] of a browser timestamp in milliseconds.
pub fn utc_time_ms(epoch_ms: f64) -> String {
    utc_time((epoch_ms / 1000.0).max(0.0) as u64)
}

/// A countdown's face: `0:07`, `12:34`, `1:02:03`.
pub fn clock_face(secs: u64) -> String {
    match secs {
        0..3600 => format!("{}:{:02}", secs / 60, secs % 60),
        _ => format!("{}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60),
    }
}

/// A span in words, to the unit that matters: `45 s`, `12 min`, `2 h 05 min`, `3 d 4 h`.
pub fn span(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min", secs / 60),
        3600..86_400 => format!("{} h {:02} min", secs / 3600, secs / 60 % 60),
        _ => format!("{} d {} h", secs / 86_400, secs / 3600 % 24),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_are_utc_clock_faces() {
        assert_eq!(super::utc_time(86_400 + 3_661), "01:01:01 UTC");
        assert_eq!(super::utc_time_ms(59_999.0), "00:00:59 UTC");
    }

    #[test]
    fn countdowns_and_spans_read_naturally() {
        assert_eq!(super::clock_face(7), "0:07");
        assert_eq!(super::clock_face(754), "12:34");
        assert_eq!(super::clock_face(3723), "1:02:03");
        assert_eq!(super::span(45), "45 s");
        assert_eq!(super::span(725), "12 min");
        assert_eq!(super::span(7500), "2 h 05 min");
        assert_eq!(super::span(273_600), "3 d 4 h");
    }
}
