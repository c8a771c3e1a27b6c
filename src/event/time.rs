//! RFC 3339 timestamps from packet time, without a date library.

use std::fmt;

/// Nanoseconds since the Unix epoch, shown as RFC 3339 UTC (`2026-11-28T10:00:00.123456Z`):
/// microseconds, or nanoseconds when the value has sub-microsecond precision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rfc3339(pub i64);

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (Howard Hinnant's
/// `civil_from_days` algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl Rfc3339 {
    /// Writes the timestamp into `buf` and returns its length: digits by hand, no formatter
    /// machinery (every flow record carries three of these).
    pub(super) fn render(&self, buf: &mut [u8; 32]) -> usize {
        fn digits(buf: &mut [u8], mut v: u64) {
            for b in buf.iter_mut().rev() {
                *b = b'0' + (v % 10) as u8;
                v /= 10;
            }
        }
        let secs = self.0.div_euclid(1_000_000_000);
        let nanos = self.0.rem_euclid(1_000_000_000) as u64;
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400) as u64;
        let (y, mo, d) = civil_from_days(days);
        // Years outside 0..=9999 do not fit RFC 3339; clamp rather than misprint.
        digits(&mut buf[0..4], y.clamp(0, 9999) as u64);
        buf[4] = b'-';
        digits(&mut buf[5..7], u64::from(mo));
        buf[7] = b'-';
        digits(&mut buf[8..10], u64::from(d));
        buf[10] = b'T';
        digits(&mut buf[11..13], rem / 3600);
        buf[13] = b':';
        digits(&mut buf[14..16], rem / 60 % 60);
        buf[16] = b':';
        digits(&mut buf[17..19], rem % 60);
        buf[19] = b'.';
        let end = if nanos.is_multiple_of(1000) {
            digits(&mut buf[20..26], nanos / 1000);
            26
        } else {
            digits(&mut buf[20..29], nanos);
            29
        };
        buf[end] = b'Z';
        end + 1
    }
}

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 32];
        let n = self.render(&mut buf);
        // Only ASCII digits and separators were written.
        f.write_str(std::str::from_utf8(&buf[..n]).unwrap_or("1970-01-01T00:00:00.000000Z"))
    }
}

impl serde::Serialize for Rfc3339 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 32];
        let n = self.render(&mut buf);
        s.serialize_str(std::str::from_utf8(&buf[..n]).unwrap_or("1970-01-01T00:00:00.000000Z"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(Rfc3339(0).to_string(), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            Rfc3339(1_764_324_000_123_456_000).to_string(),
            "2025-11-28T10:00:00.123456Z"
        );
        assert_eq!(
            Rfc3339(951_782_400_000_000_001).to_string(),
            "2000-02-29T00:00:00.000000001Z"
        );
        assert_eq!(Rfc3339(-1_000).to_string(), "1969-12-31T23:59:59.999999Z");
    }
}
