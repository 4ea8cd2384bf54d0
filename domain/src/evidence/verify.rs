//! The whole verification of one upload in one call: hash, facts, one reduced decode
//! (perceptual hash + thumbnail), checks and verdict. What the server runs off its async
//! threads, and what the benchmark measures.

use super::facts::{PhotoFacts, extract_facts};
use super::history::History;
use super::manifest::ManifestFix;
use super::pixels::{PixelAnalysis, PixelLimits, analyze};
use super::policy::NodePolicy;
use super::verdict::{Verdict, evaluate};
use crate::geo::SitePoint;
use time::OffsetDateTime;

/// Everything verification produced for one file.
#[derive(Debug, Clone, PartialEq)]
pub struct Verification {
    pub facts: PhotoFacts,
    pub pixels: PixelAnalysis,
    pub verdict: Verdict,
}

/// The context a file is judged in: all of it supplied by the caller.
#[derive(Debug, Clone, Default)]
pub struct VerifyContext<'a> {
    pub manifest: Option<&'a ManifestFix>,
    pub policy: NodePolicy,
    pub site: Option<SitePoint>,
    pub history: History,
    pub limits: PixelLimits,
}

/// Verifies `bytes` (the original). `pixel_bytes` is what to decode for the thumbnail and
/// perceptual hash when it differs from the original, e.g. a JPEG derivative of a HEIC.
pub fn verify(
    bytes: &[u8],
    pixel_bytes: Option<&[u8]>,
    ctx: &VerifyContext<'_>,
    received_at: OffsetDateTime,
) -> Verification {
    let facts = extract_facts(bytes);
    // A derivative is already upright (the phone rendered it), so the original's EXIF
    // orientation applies only when decoding the original itself.
    let pixels = match pixel_bytes {
        Some(derivative) => analyze(derivative, None, &ctx.limits),
        None => analyze(bytes, facts.orientation, &ctx.limits),
    };
    let verdict = evaluate(
        &facts,
        &pixels.state,
        ctx.manifest,
        &ctx.policy,
        ctx.site.as_ref(),
        &ctx.history,
        received_at,
    );
    Verification {
        facts,
        pixels,
        verdict,
    }
}
