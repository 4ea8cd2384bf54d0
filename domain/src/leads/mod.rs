//! Lead distribution rules: typed lead tags, rep facts, ordered rule layers, the assignment
//! decision, dedup keys, CSV row parsing and the health figures.
//!
//! Everything here is pure: the server loads rows, calls these functions with the clock as a
//! parameter, and stores what they return. The same inputs always give the same decision, which
//! is what makes decisions explainable and replayable against a draft rule set.

pub mod assign;
pub mod health;
pub mod import;
pub mod normalize;
pub mod record;
pub mod rules;
pub mod tags;

pub use assign::{Decision, Outcome, RepSnapshot, assign};
pub use normalize::{company_key, phone_key};
pub use rules::{Condition, Layer, RuleError, RuleSet};
pub use tags::{Industry, LeadTags, Region, ResponseSpeed, SourceChannel};
