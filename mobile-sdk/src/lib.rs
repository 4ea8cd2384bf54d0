//! fieldproof's field-device SDK: enrol a device key, capture signed evidence offline into a
//! durable queue, pre-check it on the spot with the server's own rules
//! (`fieldproof_domain::evidence`), and sync it exactly once when the network returns.
//!
//! Start at [`FieldDevice`]. The wire contract is docs/uploads.md.

pub mod api;
pub mod clock;
pub mod deals;
pub mod device;
pub mod error;
mod fsutil;
pub mod keystore;
pub mod precheck;
pub mod queue;
pub mod session;
pub mod sync;

pub use clock::{Clocks, SystemClocks};
pub use deals::{CachedDeal, CachedSite, Visit};
pub use device::{CaptureRequest, CaptureResult, FieldDevice, FixInput};
pub use error::SdkError;
pub use keystore::{FileKeyStore, KeyStore, MemoryKeyStore};
pub use precheck::PrecheckReport;
pub use queue::{ItemState, QueueItem, Reason};
pub use sync::{NoProgress, SyncOptions, SyncProgress, SyncReport};
