//! Pure rules of fieldproof, shared by the server and the mobile SDK.
//!
//! Nothing here performs IO or reads a clock: time is always a parameter, so the same
//! inputs always give the same answer on the phone and on the server.

pub mod account;
pub mod capture;
pub mod customer;
pub mod evidence;
pub mod geo;
pub mod leads;
pub mod pipeline;
pub mod quote;
