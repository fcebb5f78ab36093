//! The `[mail]` table: the SMTP server learners' e-mails go through (the reminder before a
//! lecture, "the archive is ready", the cancellation notice). No table: no e-mails.

use super::ConfigError;
use serde::Deserialize;

/// How the node talks to the SMTP server.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain SMTP (a relay on the nodes' own host or network; tests).
    None,
    /// Plain connection upgraded with STARTTLS, which must succeed (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS, port 465).
    Tls,
}

/// The `[mail]` table.
#[derive(Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MailSettings {
    /// The SMTP server's host name (checked against its certificate with TLS).
    pub smtp_host: String,
    /// Its port; none: 25, 587 or 465 by `tls`.
    #[serde(default)]
    pub smtp_port: Option<u16>,
    /// `"none"`, `"starttls"` (default) or `"tls"`.
    #[serde(default)]
    pub tls: SmtpTls,
    /// The SMTP user, when the server asks for one.
    #[serde(default)]
    pub user: Option<String>,
    /// The SMTP password; better given as `ROOM_MAIL_SMTP_PASSWORD` in the environment.
    #[serde(default)]
    pub password: Option<String>,
    /// The sender, e.g. `"講座事務局 <lectures@example.jp>"`.
    pub from: String,
    /// The web client's public address; links in e-mails point below it (My page is its root).
    pub base_url: String,
    /// How long before the start the reminder goes out (hours).
    #[serde(default = "defaults::reminder_lead_hours")]
    pub reminder_lead_hours: u32,
    /// How often due e-mails are looked for (seconds).
    #[serde(default = "defaults::poll_interval_secs")]
    pub poll_interval_secs: u64,
    /// How often the learners of a lecture due a reminder or an archive notice are looked up
    /// again for those who bought since (seconds): a late buyer's bound.
    #[serde(default = "defaults::rescan_interval_secs")]
    pub rescan_interval_secs: u64,
    /// Attempts per message before it is given up.
    #[serde(default = "defaults::max_attempts")]
    pub max_attempts: u32,
    /// The wait after a first failed attempt (seconds); it doubles per attempt…
    #[serde(default = "defaults::retry_first_secs")]
    pub retry_first_secs: u64,
    /// …up to this (seconds).
    #[serde(default = "defaults::retry_most_secs")]
    pub retry_most_secs: u64,
    /// How long an SMTP exchange may take before it counts as failed (seconds).
    #[serde(default = "defaults::timeout_secs")]
    pub timeout_secs: u64,
    /// Messages sent at once at most.
    #[serde(default = "defaults::concurrency")]
    pub concurrency: usize,
}

mod defaults {
    pub(super) fn reminder_lead_hours() -> u32 {
        24
    }
    pub(super) fn poll_interval_secs() -> u64 {
        30
    }
    pub(super) fn rescan_interval_secs() -> u64 {
        600
    }
    pub(super) fn max_attempts() -> u32 {
        8
    }
    pub(super) fn retry_first_secs() -> u64 {
        60
    }
    pub(super) fn retry_most_secs() -> u64 {
        3600
    }
    pub(super) fn timeout_secs() -> u64 {
        30
    }
    pub(super) fn concurrency() -> usize {
        4
    }
}

/// The password never shows, whoever prints the settings.
impl std::fmt::Debug for MailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailSettings")
            .field("smtp_host", &self.smtp_host)
            .field("smtp_port", &self.smtp_port)
            .field("tls", &self.tls)
            .field("user", &self.user.as_ref().map(|_| "…"))
            .field("password", &self.password.as_ref().map(|_| "…"))
            .field("from", &self.from)
            .field("base_url", &self.base_url)
            .field("reminder_lead_hours", &self.reminder_lead_hours)
            .field("poll_interval_secs", &self.poll_interval_secs)
            .field("rescan_interval_secs", &self.rescan_interval_secs)
            .field("max_attempts", &self.max_attempts)
            .field("retry_first_secs", &self.retry_first_secs)
            .field("retry_most_secs", &self.retry_most_secs)
            .field("timeout_secs", &self.timeout_secs)
            .field("concurrency", &self.concurrency)
            .finish()
    }
}

impl MailSettings {
    /// The port: the one given, or the usual one for the TLS mode.
    pub fn port(&self) -> u16 {
        self.smtp_port.unwrap_or(match self.tls {
            SmtpTls::None => 25,
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
        })
    }

    /// Takes the password from `password_env` (`ROOM_MAIL_SMTP_PASSWORD`) when set (it wins
    /// over the file), and checks the table. Messages name settings, never their values.
    pub(super) fn resolve(mut self, password_env: Option<String>) -> Result<Self, ConfigError> {
        if let Some(password) = password_env.filter(|p| !p.is_empty()) {
            self.password = Some(password);
        }
        let bad = |why: &str| Err(ConfigError::Invalid(format!("[mail] {why}")));
        if self.smtp_host.trim().is_empty() {
            return bad("smtp_host must name the SMTP server");
        }
        if self.from.parse::<lettre::message::Mailbox>().is_err() {
            return bad("from must be an address, e.g. \"Lectures <lectures@example.jp>\"");
        }
        let base = self.base_url.trim_end_matches('/');
        if !(base.starts_with("https://") || base.starts_with("http://"))
            || base.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return bad("base_url must be the web client's https:// (or http://) address");
        }
        self.base_url = base.to_owned();
        if self.password.is_some() && self.user.is_none() {
            return bad("a password needs a user");
        }
        if self.reminder_lead_hours == 0 || self.reminder_lead_hours > 24 * 14 {
            return bad("reminder_lead_hours must be 1 to 336");
        }
        if self.poll_interval_secs == 0
            || self.rescan_interval_secs == 0
            || self.max_attempts == 0
            || self.retry_first_secs == 0
            || self.timeout_secs == 0
            || self.concurrency == 0
        {
            return bad(
                "poll_interval_secs, rescan_interval_secs, max_attempts, retry_first_secs, timeout_secs and concurrency must be at least 1",
            );
        }
        if self.retry_most_secs < self.retry_first_secs || self.concurrency > 64 {
            return bad(
                "retry_most_secs must be at least retry_first_secs; concurrency at most 64",
            );
        }
        Ok(self)
    }
}
