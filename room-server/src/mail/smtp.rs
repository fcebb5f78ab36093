//! The SMTP transport (lettre over tokio; STARTTLS and TLS through rustls) and one message's
//! delivery, bounded by the configured timeout.

use super::letter::Letter;
use crate::config::{MailSettings, SmtpTls};
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

/// Why a message did not go out.
#[derive(Debug, thiserror::Error)]
pub enum SmtpError {
    /// The server could not be reached, refused, or failed the exchange.
    #[error("SMTP: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    /// The whole exchange took longer than allowed.
    #[error("SMTP: no answer within {0:?}")]
    Timeout(Duration),
    /// An address is not one (the sender's is checked at start; a learner's may be anything).
    #[error("not an e-mail address")]
    Address(#[from] lettre::address::AddressError),
    /// The message could not be built.
    #[error("building the message: {0}")]
    Message(#[from] lettre::error::Error),
}

impl SmtpError {
    /// Whether trying again cannot help: the server refused for good (5xx), or the message
    /// itself is wrong.
    pub fn is_permanent(&self) -> bool {
        match self {
            SmtpError::Smtp(e) => e.is_permanent(),
            SmtpError::Timeout(_) => false,
            SmtpError::Address(_) | SmtpError::Message(_) => true,
        }
    }
}

/// The node's way to the SMTP server.
#[derive(Debug)]
pub(super) struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    /// The longest a whole delivery may take.
    deadline: Duration,
}

impl Smtp {
    /// The transport of `[mail]` (no connection is made until the first message).
    pub(super) fn new(settings: &MailSettings) -> Result<Self, SmtpError> {
        let host = settings.smtp_host.as_str();
        let builder = match settings.tls {
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)?,
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)?,
        };
        let step = Duration::from_secs(settings.timeout_secs);
        let mut builder = builder.port(settings.port()).timeout(Some(step));
        if let (Some(user), Some(password)) = (&settings.user, &settings.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Self {
            transport: builder.build(),
            // Each step has its own timeout; the whole exchange is a handful of steps.
            deadline: step * 4,
        })
    }

    /// Sends `letter` from `from` to `to`.
    pub(super) async fn send(
        &self,
        from: &str,
        to: &str,
        letter: &Letter,
    ) -> Result<(), SmtpError> {
        let message = Message::builder()
            .from(from.parse::<Mailbox>()?)
            .to(to.parse::<Mailbox>()?)
            .subject(letter.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(letter.body.clone())?;
        match tokio::time::timeout(self.deadline, self.transport.send(message)).await {
            Ok(sent) => sent.map(|_| ()).map_err(SmtpError::from),
            Err(_) => Err(SmtpError::Timeout(self.deadline)),
        }
    }
}
