//! Shared by the end-to-end tests: the real server, a fault proxy, generated photos.
#![allow(dead_code)]

pub mod photos;
pub mod proxy;
pub mod server;
