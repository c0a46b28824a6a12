//! What a detector found about one recipient, before classification.

use crate::model::Action;
use crate::reason::Reason;
use crate::status::Status;

/// Raw facts about one failed recipient; [`crate::classify`] turns it into a
/// [`crate::BouncedRecipient`].
#[derive(Debug, Clone, Default)]
pub struct Finding {
    /// Lowercased address.
    pub email: String,
    /// `Final-Recipient` of a DSN (the address after alias expansion).
    pub final_recipient: Option<String>,
    /// `Action`, or what the text implies.
    pub action: Option<Action>,
    /// `Status`, or a code found in the text.
    pub status: Option<Status>,
    /// `Diagnostic-Code` text, or the MTA's sentence about this recipient.
    pub diagnostic: String,
    /// The diagnostic type (`smtp`, `x-unix`, `x-postfix`, ...), lowercased.
    pub diagnostic_type: Option<String>,
    /// The diagnostic was taken from the human-readable part.
    pub diagnostic_from_text: bool,
    /// Wider text to classify when the diagnostic alone says nothing.
    pub fallback_text: Option<String>,
    /// The text around the recipient in the human-readable part (used to
    /// find the SMTP command when the diagnostic does not say).
    pub context: Option<String>,
    /// Remote host, when known.
    pub remote_mta: Option<String>,
    /// SMTP reply code, when known.
    pub reply_code: Option<u16>,
    /// A reason decided by a vendor detector from its own structure.
    pub hint: Option<Reason>,
}

impl Finding {
    /// A finding for `email` with nothing else known yet.
    pub fn new(email: String) -> Finding {
        Finding {
            email,
            ..Finding::default()
        }
    }
}
