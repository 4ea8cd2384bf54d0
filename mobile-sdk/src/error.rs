//! The SDK's errors: plain variants with strings, so they cross an FFI boundary as they are.

/// Everything the SDK can fail with.
#[derive(Debug, thiserror::Error)]
pub enum SdkError {
    #[error("{context}: {message}")]
    Io { context: String, message: String },
    #[error("local data is damaged: {0}")]
    Corrupt(String),
    #[error("the queue database: {0}")]
    Database(String),
    #[error("this device is not enrolled yet (run `enroll`)")]
    NotEnrolled,
    #[error("not logged in (run `login`)")]
    NotLoggedIn,
    #[error("the server revoked this device's session: log in again")]
    Revoked,
    #[error("invalid input: {0}")]
    Invalid(String),
    #[error("unknown deal `{0}`: run `deals` while online first")]
    UnknownDeal(String),
    #[error("the network: {0}")]
    Network(String),
    #[error("the server said {status} {code}: {message}")]
    Server {
        status: u16,
        code: String,
        message: String,
    },
    #[error("a lock was poisoned by a panic")]
    Poisoned,
}

impl SdkError {
    pub fn io(context: &str, e: std::io::Error) -> SdkError {
        SdkError::Io {
            context: context.to_owned(),
            message: e.to_string(),
        }
    }
}

impl From<rusqlite::Error> for SdkError {
    fn from(e: rusqlite::Error) -> Self {
        SdkError::Database(e.to_string())
    }
}
