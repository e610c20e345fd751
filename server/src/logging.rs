//! The log: one line per event, whatever the event holds.
//!
//! Log lines carry text from outside: a callback's `error`, which anyone can put in a URL, the
//! provider's error descriptions, a user's `sub`. The fmt layer writes a field's `Display` as it
//! is, so a line break in such text would start a line of the sender's making: a forged log
//! entry. Escaping at each call site would protect only the sites someone remembered; the
//! writer here escapes every `\n` and `\r` inside an event, from this crate or any other.

use std::io;

use tracing_subscriber::fmt::MakeWriter;

/// Installs the global subscriber: `RUST_LOG`, or `info` with tower-http and tower-sessions at
/// `warn`; to stdout, one line per event.
pub fn init() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_http=warn,tower_sessions=warn".into()),
        )
        .with_writer(OneLinePerEvent(io::stdout))
        .init();
}

/// Makes writers that escape line breaks inside an event. The fmt layer formats an event into a
/// buffer and hands it over in one `write_all`, ending with its one `\n`, which is kept.
pub struct OneLinePerEvent<M>(pub M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for OneLinePerEvent<M> {
    type Writer = OneLine<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        OneLine(self.0.make_writer())
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        OneLine(self.0.make_writer_for(meta))
    }
}

pub struct OneLine<W>(W);

impl<W: io::Write> io::Write for OneLine<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_all(&escape_line_breaks(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// `event` with every `\n` and `\r` written as those two characters, except a last `\n`.
fn escape_line_breaks(event: &[u8]) -> Vec<u8> {
    let (body, end) = match event.strip_suffix(b"\n") {
        Some(body) => (body, &b"\n"[..]),
        None => (event, &b""[..]),
    };
    let mut escaped = Vec::with_capacity(event.len() + 8);
    for &byte in body {
        match byte {
            b'\n' => escaped.extend_from_slice(b"\\n"),
            b'\r' => escaped.extend_from_slice(b"\\r"),
            _ => escaped.push(byte),
        }
    }
    escaped.extend_from_slice(end);
    escaped
}

#[cfg(test)]
mod tests {
    use super::escape_line_breaks;

    #[test]
    fn only_the_last_line_break_of_an_event_stays() {
        assert_eq!(escape_line_breaks(b"a\nb\r\nc\n"), b"a\\nb\\r\\nc\n");
        assert_eq!(escape_line_breaks(b"no end"), b"no end");
    }
}
