//! Use cases shared by the API, the CLI, the demo seeder and the background jobs.

pub mod accounts;
pub mod chat_robots;
pub mod deals;
pub mod evidence;
pub mod leads;
pub mod notify;
pub mod quote_pdf;
pub mod quotes;
pub mod uploads;
