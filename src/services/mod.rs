//! Use cases shared by the API, the CLI and the demo seeder.

pub mod accounts;
pub mod deals;
pub mod uploads;
