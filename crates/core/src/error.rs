use tidings_store::StoreError;
use tidings_types::fields::FieldError;

/// Stable, documented error codes. The HTTP layer maps each to a status;
/// clients match on the code, never on the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidUrl,
    BlockedUrl,
    UnknownField,
    InvalidEventType,
    InvalidMessage,
    InvalidAddress,
    /// A custom header's name or value is not valid.
    InvalidHeader,
    /// A custom header that tidings writes itself, or that says who a
    /// message is from or to.
    ReservedHeader,
    /// An `Idempotency-Key` that is not 1 to 255 printable characters.
    InvalidIdempotencyKey,
    /// An `Idempotency-Key` used before with a different request.
    IdempotencyKeyReused,
    TooManyRecipients,
    MessageTooLarge,
    /// The From domain is not one of the account's sending domains.
    UnknownSenderDomain,
    DomainUnverified,
    Conflict,
    NotFound,
    Unauthorized,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidUrl => "invalid_url",
            ErrorCode::BlockedUrl => "blocked_url",
            ErrorCode::UnknownField => "unknown_field",
            ErrorCode::InvalidEventType => "invalid_event_type",
            ErrorCode::InvalidMessage => "invalid_message",
            ErrorCode::InvalidAddress => "invalid_address",
            ErrorCode::InvalidHeader => "invalid_header",
            ErrorCode::ReservedHeader => "reserved_header",
            ErrorCode::InvalidIdempotencyKey => "invalid_idempotency_key",
            ErrorCode::IdempotencyKeyReused => "idempotency_key_reused",
            ErrorCode::TooManyRecipients => "too_many_recipients",
            ErrorCode::MessageTooLarge => "message_too_large",
            ErrorCode::UnknownSenderDomain => "unknown_sender_domain",
            ErrorCode::DomainUnverified => "domain_unverified",
            ErrorCode::Conflict => "conflict",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Internal => "internal",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("{message}")]
    Invalid { code: ErrorCode, message: String },
    #[error("not found")]
    NotFound,
    #[error("invalid or missing API key")]
    Unauthorized,
    #[error("storage failure")]
    Store(#[source] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl CoreError {
    pub fn invalid(code: ErrorCode, message: impl Into<String>) -> Self {
        CoreError::Invalid {
            code,
            message: message.into(),
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            CoreError::Invalid { code, .. } => *code,
            CoreError::NotFound => ErrorCode::NotFound,
            CoreError::Unauthorized => ErrorCode::Unauthorized,
            CoreError::Store(_) | CoreError::Internal(_) => ErrorCode::Internal,
        }
    }
}

impl From<StoreError> for CoreError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => CoreError::NotFound,
            StoreError::Conflict(m) => CoreError::invalid(ErrorCode::Conflict, m),
            other => CoreError::Store(other),
        }
    }
}

impl From<FieldError> for CoreError {
    fn from(e: FieldError) -> Self {
        CoreError::invalid(ErrorCode::UnknownField, e.to_string())
    }
}
