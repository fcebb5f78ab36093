//! The entry gate's records: lectures, accounts, profiles, purchases, seat allocations and
//! attendance, as the portal tells them and as the store keeps them.

use protocol::server::Emotion;
use protocol::{Seat, UnixMillis};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// The value as stored and sent.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// The value from its stored text.
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }
    };
}

text_enum!(
    /// What kind of account this is (seeds 001 and 002).
    AccountKind {
        /// A person; the only kind that enters rooms.
        Individual = "individual",
        /// A company: buys seats for the individuals linked to it, never enters itself.
        Corporate = "corporate",
        /// A group of companies buying inventory for others; never enters.
        CorporateGroup = "corporate_group",
    }
);

text_enum!(
    /// How a purchase admits its holder.
    Modality {
        /// An online seat.
        Online = "online",
        /// A venue ticket, which also admits online without notice.
        Venue = "venue",
    }
);

text_enum!(
    /// How a purchase is paid.
    PaymentMethod {
        /// Card: paid at once.
        Card = "card",
        /// Convenience store (コンビニ): paid only once paid at the store.
        Konbini = "konbini",
        /// A free (0 yen) lecture still has an order.
        Free = "free",
    }
);

text_enum!(
    /// Where a purchase stands.
    PurchaseStatus {
        /// Paid: grants entry.
        Paid = "paid",
        /// Waiting for the convenience-store payment: no entry yet.
        AwaitingPayment = "awaiting_payment",
        /// Cancelled: no entry.
        Cancelled = "cancelled",
        /// Refunded: no entry.
        Refunded = "refunded",
    }
);

text_enum!(
    /// Whether a lecture takes place.
    LectureStatus {
        /// On the schedule.
        Scheduled = "scheduled",
        /// Called off (instructor ill, weather warning, …).
        Cancelled = "cancelled",
    }
);

text_enum!(
    /// A staff role in one lecture.
    StaffRole {
        /// Runs the lecture.
        Instructor = "instructor",
        /// Assists the instructor.
        Moderator = "moderator",
    }
);

impl StaffRole {
    /// The room role this staff role gets.
    pub fn room_role(self) -> protocol::Role {
        match self {
            StaffRole::Instructor => protocol::Role::Instructor,
            StaffRole::Moderator => protocol::Role::Moderator,
        }
    }
}

/// A staff member of a lecture.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StaffMember {
    /// Account id.
    pub account: String,
    /// Role in the lecture.
    pub role: StaffRole,
}

/// A lecture as the portal schedules it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Lecture {
    /// Lecture id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Start, Unix milliseconds.
    #[schema(value_type = u64)]
    pub starts_at: UnixMillis,
    /// End, Unix milliseconds.
    #[schema(value_type = u64)]
    pub ends_at: UnixMillis,
    /// Seat grid rows.
    pub rows: u16,
    /// Seat grid columns.
    pub cols: u16,
    /// Emotion buttons; empty for the default five.
    #[schema(value_type = Vec<Object>)]
    pub emotions: Vec<Emotion>,
    /// When the archive can be watched (normally 1–3 days after the lecture).
    #[schema(value_type = Option<u64>)]
    pub archive_available_at: Option<UnixMillis>,
    /// Scheduled or cancelled.
    pub status: LectureStatus,
    /// Why it was cancelled.
    pub cancel_reason: Option<String>,
    /// When the instructor started its delivery, if a room node saw them do it (it may be
    /// before `starts_at`: "My page" shows it live from then).
    #[schema(value_type = Option<u64>)]
    pub started_at: Option<UnixMillis>,
    /// When a room node saw it end, if it did.
    #[schema(value_type = Option<u64>)]
    pub ended_at: Option<UnixMillis>,
    /// Instructors and moderators.
    pub staff: Vec<StaffMember>,
}

/// The most cells a lecture's seat grid may have.
pub const MAX_SEATS: u32 = 100_000;

/// A lecture whose shape no room can hold; the sentence says what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvalidLecture(String);

/// Checks a lecture's shape: a sensible id, an end after the start, a grid of 1 to
/// [`MAX_SEATS`] cells, unique emotion keys.
pub fn validate_lecture(spec: &protocol::server::LectureInfo) -> Result<(), InvalidLecture> {
    let bad = |message: String| Err(InvalidLecture(message));
    let id = spec.id.as_str();
    if id.is_empty()
        || id.len() > 64
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return bad("the id must be 1 to 64 of A-Z a-z 0-9 - _ .".into());
    }
    if spec.ends_at <= spec.starts_at {
        return bad("ends_at must be after starts_at".into());
    }
    let cells = u32::from(spec.rows) * u32::from(spec.cols);
    if cells == 0 || cells > MAX_SEATS {
        return bad(format!(
            "the seat grid must have 1 to {MAX_SEATS} cells (has {cells})"
        ));
    }
    let mut keys = std::collections::HashSet::new();
    if spec
        .emotions
        .iter()
        .any(|e| !keys.insert(&e.key) || e.key.as_str().is_empty())
    {
        return bad("emotion keys must be unique and non-empty".into());
    }
    Ok(())
}

impl Lecture {
    /// What a room of this lecture is made from.
    pub fn info(&self) -> protocol::server::LectureInfo {
        protocol::server::LectureInfo {
            id: protocol::LectureId::from(self.id.as_str()),
            title: self.title.clone(),
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            rows: self.rows,
            cols: self.cols,
            emotions: self.emotions.clone(),
            // The room sets its own limit from its settings.
            chat_max_chars: 0,
        }
    }
}

/// An account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Account {
    /// Account id (the portal's).
    pub id: String,
    /// Individual, corporate or corporate group.
    pub kind: AccountKind,
    /// E-mail; for companies, the registered address individuals link with.
    pub email: Option<String>,
    /// Display name (companies).
    pub name: Option<String>,
}

/// Attendee information of an individual.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema, ts_rs::TS)]
pub struct Profile {
    /// The public name in rooms; stored as given, always shown as text.
    pub nickname: Option<String>,
    /// E-mail for the reminder the day before.
    pub email: Option<String>,
}

/// A purchase of a lecture.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Purchase {
    /// Purchase id (the portal's).
    pub id: String,
    /// Who bought: an individual, or a company for its linked individuals.
    pub buyer: String,
    /// The lecture.
    pub lecture: String,
    /// Seats bought.
    pub quantity: u32,
    /// Online or venue.
    pub modality: Modality,
    /// Card, konbini or free.
    pub payment_method: PaymentMethod,
    /// Paid, awaiting payment, cancelled or refunded.
    pub status: PurchaseStatus,
}

/// A corporate purchase's seat given to a linked individual.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Allocation {
    /// The corporate purchase.
    pub purchase: String,
    /// The individual who holds the seat.
    pub individual: String,
    /// When.
    #[schema(value_type = u64)]
    pub allocated_at: UnixMillis,
}

/// One stay of a person in a lecture's room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AttendanceRecord {
    /// The lecture.
    pub lecture: String,
    /// The person.
    pub account: String,
    /// Their role then.
    #[schema(value_type = String)]
    pub role: protocol::Role,
    /// Entered, Unix milliseconds.
    #[schema(value_type = u64)]
    pub entered_at: UnixMillis,
    /// Left (none while still in).
    #[schema(value_type = Option<u64>)]
    pub left_at: Option<UnixMillis>,
    /// Where they sat last.
    #[schema(value_type = Option<Object>)]
    pub seat: Option<Seat>,
}
