//! Authentication: password hashing, access JWTs, refresh-token sessions and the `Caller`
//! extractor every protected handler takes.

pub mod caller;
pub mod console;
pub mod jwt;
pub mod password;
pub mod sessions;

pub use caller::Caller;
