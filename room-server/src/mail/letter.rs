//! What each e-mail says: pure functions of the lecture, its times and the link, so every
//! wording is testable. Japanese first, the same in English below (profiles have no language
//! yet); times in Japan time (UTC+09:00), the zone lectures are held in.

use crate::gate::model::Lecture;
use crate::gate::notices::NoticeKind;
use protocol::UnixMillis;
use time::{OffsetDateTime, UtcOffset, Weekday};

/// One e-mail's subject and plain-text body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Letter {
    /// The subject line.
    pub subject: String,
    /// The body (plain text, UTF-8).
    pub body: String,
}

/// Japan time.
const JST: UtcOffset = match UtcOffset::from_hms(9, 0, 0) {
    Ok(offset) => offset,
    Err(_) => UtcOffset::UTC,
};

fn in_japan(at: UnixMillis) -> OffsetDateTime {
    let nanos = i128::from(at.0) * 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .to_offset(JST)
}

/// `2026年12月1日(火) 19:00`
pub fn japanese_time(at: UnixMillis) -> String {
    let t = in_japan(at);
    let day = match t.weekday() {
        Weekday::Monday => "月",
        Weekday::Tuesday => "火",
        Weekday::Wednesday => "水",
        Weekday::Thursday => "木",
        Weekday::Friday => "金",
        Weekday::Saturday => "土",
        Weekday::Sunday => "日",
    };
    format!(
        "{}年{}月{}日({day}) {:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// `Tue 1 Dec 2026, 19:00`
pub fn english_time(at: UnixMillis) -> String {
    let t = in_japan(at);
    let weekday = t.weekday().to_string();
    let month = t.month().to_string();
    format!(
        "{} {} {} {}, {:02}:{:02}",
        weekday.get(..3).unwrap_or(&weekday),
        t.day(),
        month.get(..3).unwrap_or(&month),
        t.year(),
        t.hour(),
        t.minute()
    )
}

/// Titles come from the portal: one line in a subject whatever they hold.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// The e-mail of `kind` about `lecture`; `doors_open_at` when learners may enter, `my_page`
/// the address of My page.
pub fn compose(
    kind: NoticeKind,
    lecture: &Lecture,
    doors_open_at: UnixMillis,
    my_page: &str,
) -> Letter {
    let title = one_line(&lecture.title);
    let (ja_start, en_start) = (
        japanese_time(lecture.starts_at),
        english_time(lecture.starts_at),
    );
    match kind {
        NoticeKind::Reminder => {
            let (ja_doors, en_doors) = (japanese_time(doors_open_at), english_time(doors_open_at));
            Letter {
                subject: format!("【開講のご案内】{title} / Reminder: {title}"),
                body: format!(
                    "「{title}」の開講が近づきました。\n\n\
                     開始: {ja_start}(日本時間)\n\
                     入室開始: {ja_doors}(日本時間)\n\n\
                     入室はマイページからどうぞ:\n{my_page}\n\n\
                     ----\n\n\
                     \"{title}\" starts soon.\n\n\
                     Starts: {en_start} (Japan time, UTC+09:00)\n\
                     Doors open: {en_doors} (Japan time, UTC+09:00)\n\n\
                     Enter from My page:\n{my_page}\n"
                ),
            }
        }
        NoticeKind::ArchiveReady => Letter {
            subject: format!("【アーカイブ公開】{title} / Archive ready: {title}"),
            body: format!(
                "「{title}」({ja_start} 開講)のアーカイブを公開しました。\
                 マイページから何度でもご覧いただけます:\n{my_page}\n\n\
                 ----\n\n\
                 The archive of \"{title}\" ({en_start}, Japan time) is ready. \
                 Watch it from My page as often as you like:\n{my_page}\n"
            ),
        },
        NoticeKind::Cancelled => {
            let reason = one_line(lecture.cancel_reason.as_deref().unwrap_or_default());
            Letter {
                subject: format!("【開講中止】{title} / Cancelled: {title}"),
                body: format!(
                    "{ja_start}(日本時間)開講予定の「{title}」は中止になりました。\n\
                     理由: {reason}\n\n\
                     マイページ:\n{my_page}\n\n\
                     ----\n\n\
                     \"{title}\", planned for {en_start} (Japan time, UTC+09:00), is cancelled.\n\
                     Reason: {reason}\n\n\
                     My page:\n{my_page}\n"
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::model::LectureStatus;

    /// 2026-12-01 19:00 in Japan (10:00 UTC).
    const START: UnixMillis = UnixMillis(1_796_119_200_000);

    fn lecture() -> Lecture {
        Lecture {
            id: "l1".into(),
            title: "統計入門\r\nBcc: x@example.jp".into(),
            starts_at: START,
            ends_at: START.plus_ms(5_400_000),
            rows: 2,
            cols: 2,
            emotions: vec![],
            archive_available_at: None,
            status: LectureStatus::Cancelled,
            cancel_reason: Some("講師急病のため".into()),
            started_at: None,
            ended_at: None,
            staff: vec![],
        }
    }

    #[test]
    fn times_read_in_japan_time() {
        assert_eq!(japanese_time(START), "2026年12月1日(火) 19:00");
        assert_eq!(english_time(START), "Tue 1 Dec 2026, 19:00");
        // 23:30 UTC is already the next day in Japan.
        assert_eq!(
            japanese_time(UnixMillis(1_796_167_800_000)),
            "2026年12月2日(水) 08:30"
        );
    }

    #[test]
    fn the_reminder_gives_the_start_the_doors_and_my_page_in_both_languages() {
        let letter = compose(
            NoticeKind::Reminder,
            &lecture(),
            START.minus_ms(3_600_000),
            "https://lectures.example.jp/lectures",
        );
        assert!(!letter.subject.contains(['\r', '\n']), "{}", letter.subject);
        for wanted in [
            "開始: 2026年12月1日(火) 19:00",
            "入室開始: 2026年12月1日(火) 18:00",
            "Starts: Tue 1 Dec 2026, 19:00",
            "Doors open: Tue 1 Dec 2026, 18:00",
            "https://lectures.example.jp/lectures",
        ] {
            assert!(letter.body.contains(wanted), "{wanted} in {}", letter.body);
        }
    }

    #[test]
    fn the_cancellation_says_why() {
        let letter = compose(
            NoticeKind::Cancelled,
            &lecture(),
            START,
            "https://x.example/lectures",
        );
        assert!(letter.subject.starts_with("【開講中止】"));
        assert!(letter.body.contains("理由: 講師急病のため"));
        assert!(letter.body.contains("Reason: 講師急病のため"));
    }
}
