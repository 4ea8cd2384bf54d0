//! Evidence: from a file's bytes to an explainable verdict (DESIGN.md §4).
//!
//! [`extract_facts`] reads what the file claims, [`pixels::analyze`] makes the perceptual hash
//! and thumbnail from one reduced decode, [`evaluate`] judges facts against the node's policy,
//! the customer site, the capture manifest and history, [`verify`] runs all three, and
//! [`inspect`] shapes the result for the CLI. Nothing here does IO or reads a clock.

pub mod capture_time;
pub mod checks;
pub mod container;
pub mod facts;
pub mod format;
pub mod gps;
pub mod hash;
pub mod history;
pub mod inspect;
pub mod manifest;
pub mod messages;
pub mod phash;
pub mod pixels;
pub mod policy;
pub mod verdict;
pub mod verify;
pub mod xmp;

pub use capture_time::{CaptureClaims, CaptureSource, CaptureTime, LocalTime};
pub use checks::{Check, CheckCode, CheckDetail, Outcome, Witness};
pub use facts::{ExifStatus, PhotoFacts, extract_facts, extract_facts_hashed};
pub use format::{Format, sniff};
pub use gps::{GpsFact, GpsFix, GpsInvalid};
pub use hash::ContentHash;
pub use history::{History, PriorCapture, PriorEvidence};
pub use inspect::{InspectOptions, InspectReport, inspect};
pub use manifest::ManifestFix;
pub use messages::Message;
pub use pixels::{PerceptualHash, PixelAnalysis, PixelLimits, PixelState, Thumbnail, analyze};
pub use policy::{NodePolicy, VisitWindow, WitnessRequirement};
pub use verdict::{RULE_SET_VERSION, Verdict, VerdictOutcome, evaluate};
pub use verify::{Verification, VerifyContext, verify};
