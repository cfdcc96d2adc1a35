//! Commands arriving on `styleframe/<id>/<entity>/set`: parsed into the same
//! [`Command`]s the button sends, or rejected with a reason. Floods are cut by
//! a token bucket before any parsing, and rejections are logged at a bounded rate.

use std::time::{Duration, Instant};

use super::topics;
use crate::daemon::state::StyleInfo;
use crate::frame::Command;

/// Larger command payloads are rejected unread (a style name is short).
pub const MAX_PAYLOAD: usize = 512;

/// What an MQTT command payload says, or why it is ignored.
pub fn parse(entity: &str, payload: &[u8], styles: &[StyleInfo]) -> Result<Command, String> {
    if payload.len() > MAX_PAYLOAD {
        return Err(format!("{} bytes (at most {MAX_PAYLOAD})", payload.len()));
    }
    let text = std::str::from_utf8(payload).map_err(|_| "not UTF-8".to_string())?;
    let text = text.trim();
    match entity {
        topics::STYLE => {
            let known = styles.is_empty()
                || styles
                    .iter()
                    .any(|s| crate::styles::same_name(&s.name, text));
            if known {
                Ok(Command::SetStyle(text.into()))
            } else {
                Err(format!("unknown style {text:?}"))
            }
        }
        topics::STRENGTH => match text.parse::<f32>() {
            Ok(v) if v.is_finite() => Ok(Command::SetStrength(v.clamp(0.0, 1.0))),
            _ => Err(format!("strength {text:?} is not a number 0 ..= 1")),
        },
        topics::GALLERY => on_off(text).map(Command::SetGallery),
        topics::SCREEN => on_off(text).map(Command::SetScreen),
        topics::NEXT => Ok(Command::NextStyle),
        topics::PREV => Ok(Command::PrevStyle),
        other => Err(format!("no command {other:?}")),
    }
}

fn on_off(text: &str) -> Result<bool, String> {
    match text.to_ascii_uppercase().as_str() {
        "ON" | "TRUE" | "1" => Ok(true),
        "OFF" | "FALSE" | "0" => Ok(false),
        _ => Err(format!("{text:?} is neither ON nor OFF")),
    }
}

/// A token bucket: `burst` messages at once, then `per_second`.
pub struct RateLimit {
    tokens: f64,
    burst: f64,
    per_second: f64,
    last: Instant,
}

impl RateLimit {
    pub fn new(per_second: f64, burst: f64) -> RateLimit {
        RateLimit {
            tokens: burst,
            burst,
            per_second,
            last: Instant::now(),
        }
    }

    pub fn allow(&mut self, now: Instant) -> bool {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * self.per_second).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Logs a warning at most once per `every`, counting what it held back.
pub struct LogLimit {
    every: Duration,
    last: Option<Instant>,
    held: u64,
}

impl LogLimit {
    pub fn new(every: Duration) -> LogLimit {
        LogLimit {
            every,
            last: None,
            held: 0,
        }
    }

    /// The line to log now, if any.
    pub fn line(&mut self, now: Instant, msg: impl FnOnce() -> String) -> Option<String> {
        if self
            .last
            .is_some_and(|t| now.saturating_duration_since(t) < self.every)
        {
            self.held += 1;
            return None;
        }
        self.last = Some(now);
        let held = std::mem::take(&mut self.held);
        Some(match held {
            0 => msg(),
            n => format!("{} ({n} more held back)", msg()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn styles() -> Vec<StyleInfo> {
        ["wave", "scream"]
            .map(|n| StyleInfo {
                name: n.into(),
                ..Default::default()
            })
            .to_vec()
    }

    #[test]
    fn good_payloads_become_the_buttons_commands() {
        let s = styles();
        assert_eq!(
            parse("style", b"Scream", &s),
            Ok(Command::SetStyle("Scream".into()))
        );
        assert_eq!(
            parse("strength", b" 0.25 ", &s),
            Ok(Command::SetStrength(0.25))
        );
        assert_eq!(parse("strength", b"3", &s), Ok(Command::SetStrength(1.0)));
        assert_eq!(parse("gallery", b"ON", &s), Ok(Command::SetGallery(true)));
        assert_eq!(parse("screen", b"off", &s), Ok(Command::SetScreen(false)));
        assert_eq!(parse("next", b"PRESS", &s), Ok(Command::NextStyle));
        assert_eq!(parse("prev", b"", &s), Ok(Command::PrevStyle));
    }

    #[test]
    fn bad_payloads_are_rejected_with_a_reason() {
        let s = styles();
        for (entity, payload) in [
            ("style", &b"nope"[..]),
            ("style", &[0xff, 0xfe, 0x00][..]),
            ("strength", b"abc"),
            ("strength", b"NaN"),
            ("strength", b"inf"),
            ("gallery", b"maybe"),
            ("reboot", b"now"),
        ] {
            let r = parse(entity, payload, &s);
            assert!(r.is_err(), "{entity} {payload:?} accepted: {r:?}");
        }
        let huge = vec![b'a'; MAX_PAYLOAD + 1];
        assert!(parse("next", &huge, &s).unwrap_err().contains("bytes"));
    }

    #[test]
    fn the_bucket_lets_a_burst_through_then_the_rate() {
        let t0 = Instant::now();
        let mut r = RateLimit::new(10.0, 5.0);
        let passed = (0..100).filter(|_| r.allow(t0)).count();
        assert_eq!(passed, 5);
        assert!(r.allow(t0 + Duration::from_millis(100)));
        assert!(!r.allow(t0 + Duration::from_millis(100)));
    }

    #[test]
    fn log_lines_are_limited_and_count_what_was_held_back() {
        let t0 = Instant::now();
        let mut l = LogLimit::new(Duration::from_secs(10));
        assert_eq!(l.line(t0, || "a".into()).as_deref(), Some("a"));
        assert!(l.line(t0 + Duration::from_secs(1), || "b".into()).is_none());
        assert!(l.line(t0 + Duration::from_secs(2), || "c".into()).is_none());
        let later = l.line(t0 + Duration::from_secs(11), || "d".into());
        assert_eq!(later.as_deref(), Some("d (2 more held back)"));
    }
}
