//! Times as people read them and as calendars take them: RFC 3339 in and out of the API, local
//! time in a meeting's time zone for exports and pages, and the meeting as an iCalendar file
//! (RFC 5545). Pure functions; the time zone database is built in (jiff's bundled tzdb).

use jiff::tz::TimeZone;
use townhall_core::{MeetingId, Schedule, Timestamp};

/// Parses an RFC 3339 time with an offset (`2026-03-12T18:00:00+01:00` or `…Z`); a time
/// without an offset is refused, since it does not name an instant.
pub fn parse_rfc3339(raw: &str) -> Option<Timestamp> {
    let t: jiff::Timestamp = raw.trim().parse().ok()?;
    u64::try_from(t.as_millisecond()).ok().map(Timestamp)
}

/// The zone of this IANA name, if the built-in database knows it.
pub fn zone(name: &str) -> Option<TimeZone> {
    TimeZone::get(name).ok()
}

fn zoned(t: Timestamp, tz: &TimeZone) -> Option<jiff::ZonedDateTime> {
    let ms = i64::try_from(t.0).ok()?;
    Some(
        jiff::Timestamp::from_millisecond(ms)
            .ok()?
            .to_zoned_datetime(tz.clone()),
    )
}

/// RFC 3339 with the zone's offset at that instant: `2026-03-12T18:00:00+01:00`.
pub fn rfc3339(t: Timestamp, tz: &TimeZone) -> String {
    zoned(t, tz).map_or_else(String::new, |z| {
        z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
    })
}

/// Local wall-clock time for a spreadsheet: `2026-03-12 18:00:05`.
pub fn local(t: Timestamp, tz: &TimeZone) -> String {
    zoned(t, tz).map_or_else(String::new, |z| z.strftime("%Y-%m-%d %H:%M:%S").to_string())
}

/// UTC in iCalendar's form: `20260312T170000Z`.
fn ics_utc(t: Timestamp) -> String {
    zoned(t, &TimeZone::UTC).map_or_else(String::new, |z| z.strftime("%Y%m%dT%H%M%SZ").to_string())
}

/// Escapes a TEXT value (RFC 5545 §3.3.11): backslash, semicolon, comma, and line breaks.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Folds a content line at 75 octets (RFC 5545 §3.1), never inside a UTF-8 character, and
/// ends each physical line with CRLF.
fn fold(line: &str, out: &mut String) {
    let mut width = 0;
    for c in line.chars() {
        let len = c.len_utf8();
        if width + len > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += len;
    }
    out.push_str("\r\n");
}

/// What a calendar entry for a meeting needs besides its schedule.
pub struct CalendarEntry<'a> {
    pub id: &'a MeetingId,
    pub title: &'a str,
    pub schedule: &'a Schedule,
    /// The citizens' page, where the meeting is followed.
    pub url: &'a str,
    /// Host part of the UID, so UIDs stay unique across deployments.
    pub host: &'a str,
    pub now: Timestamp,
}

/// The meeting as one VEVENT. Times are in UTC, which every calendar converts to its own zone,
/// so no VTIMEZONE block is needed.
pub fn ics(e: &CalendarEntry<'_>) -> String {
    let mut description = String::new();
    if let Some(d) = &e.schedule.description {
        description.push_str(d);
        description.push_str("\n\n");
    }
    for (i, item) in e.schedule.agenda.iter().enumerate() {
        description.push_str(&format!("{}. {item}\n", i + 1));
    }
    if !e.schedule.agenda.is_empty() {
        description.push('\n');
    }
    description.push_str(e.url);
    let lines = [
        "BEGIN:VCALENDAR".to_owned(),
        "VERSION:2.0".to_owned(),
        "PRODID:-//townhall//townhall//EN".to_owned(),
        "CALSCALE:GREGORIAN".to_owned(),
        "METHOD:PUBLISH".to_owned(),
        "BEGIN:VEVENT".to_owned(),
        format!("UID:{}@{}", e.id, escape(e.host)),
        format!("DTSTAMP:{}", ics_utc(e.now)),
        format!("DTSTART:{}", ics_utc(e.schedule.starts_at)),
        format!("DTEND:{}", ics_utc(e.schedule.ends_at)),
        format!("SUMMARY:{}", escape(e.title)),
        format!("DESCRIPTION:{}", escape(&description)),
        format!("URL:{}", e.url),
        "END:VEVENT".to_owned(),
        "END:VCALENDAR".to_owned(),
    ];
    let mut out = String::new();
    for line in &lines {
        fold(line, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cph() -> TimeZone {
        zone("Europe/Copenhagen").expect("built-in tzdb knows Copenhagen")
    }

    #[test]
    fn rfc3339_needs_an_offset_and_round_trips_in_the_zone() {
        let t = parse_rfc3339("2026-03-12T18:00:00+01:00").unwrap();
        assert_eq!(t, Timestamp(1_773_334_800_000));
        assert_eq!(parse_rfc3339("2026-03-12T17:00:00Z"), Some(t));
        assert_eq!(rfc3339(t, &cph()), "2026-03-12T18:00:00+01:00");
        for bad in [
            "2026-03-12T18:00:00",
            "12/03/2026 18:00",
            "",
            "2026-13-01T00:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
        // Summer time.
        let summer = parse_rfc3339("2026-06-01T19:30:00+02:00").unwrap();
        assert_eq!(local(summer, &cph()), "2026-06-01 19:30:00");
        assert!(zone("Europe/Atlantis").is_none());
    }

    #[test]
    fn ics_escapes_folds_and_ends_lines_with_crlf() {
        let id = MeetingId::parse("k7m2qx9rtp").unwrap();
        let schedule = Schedule {
            starts_at: Timestamp(1_773_334_800_000),
            ends_at: Timestamp(1_773_342_000_000),
            time_zone: "Europe/Copenhagen".into(),
            description: Some(
                "Skolen; byggeriet, økonomien og \\ trafikken.\nAlle er velkomne til at stille \
                 spørgsmål om den nye skole i Rungsted – også på forhånd."
                    .into(),
            ),
            agenda: vec!["Velkomst".into(), "Spørgsmål".into()],
            qa_before_start: true,
        };
        let text = ics(&CalendarEntry {
            id: &id,
            title: "Borgermøde: Ny skole, Rungsted",
            schedule: &schedule,
            url: "https://moede.hoersholm.dk/m/k7m2qx9rtp",
            host: "moede.hoersholm.dk",
            now: Timestamp(1_773_000_000_000),
        });
        assert!(text.starts_with("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"));
        assert!(text.ends_with("END:VEVENT\r\nEND:VCALENDAR\r\n"));
        assert!(text.contains("\r\nDTSTART:20260312T170000Z\r\n"));
        assert!(text.contains("\r\nDTEND:20260312T190000Z\r\n"));
        assert!(text.contains("\r\nSUMMARY:Borgermøde: Ny skole\\, Rungsted\r\n"));
        assert!(text.contains("\r\nUID:k7m2qx9rtp@moede.hoersholm.dk\r\n"));
        // No bare LF, and no physical line longer than 75 octets.
        assert!(!text.replace("\r\n", "").contains('\n'));
        for line in text.split("\r\n") {
            assert!(line.len() <= 75, "{line:?} is {} octets", line.len());
        }
        // Unfolding gives back the escaped description.
        let unfolded = text.replace("\r\n ", "");
        assert!(unfolded.contains(
            "DESCRIPTION:Skolen\\; byggeriet\\, økonomien og \\\\ trafikken.\\nAlle er velkomne"
        ));
        assert!(unfolded.contains("\\n\\n1. Velkomst\\n2. Spørgsmål\\n\\nhttps://moede"));
    }

    #[test]
    fn folding_never_splits_a_character() {
        let mut out = String::new();
        fold(&"æ".repeat(100), &mut out);
        for line in out.split("\r\n").filter(|l| !l.is_empty()) {
            assert!(line.len() <= 75);
            assert!(std::str::from_utf8(line.as_bytes()).is_ok());
        }
        assert_eq!(out.replace("\r\n ", "").trim_end(), "æ".repeat(100));
    }
}
