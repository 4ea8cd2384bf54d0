//! Evidence intake (DESIGN.md §4): verify a received file against the node's policy, the
//! customer site, the signed capture manifest and the org's history; store the original
//! immutably; then, in one transaction, record the evidence, its node fact, the audit event and
//! let the stage engine advance.
//!
//! Order of failure-safety: blob first, row second. A crash between the two leaves at most an
//! orphan blob (swept later); an accepted row always has its bytes, checked again after commit.

pub mod receive;
pub mod review;
pub mod sweep;
pub mod verifier;
pub mod view;

use crate::auth::Caller;
use crate::db::entities::{deal, evidence};
use crate::db::{self, deals as deal_repo, evidence as repo};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::services::deals as engine;
use crate::state::AppState;
use crate::storage::{BlobKey, PutOutcome};
use base64::Engine;
use fieldproof_domain::capture::{CaptureManifest, DeviceClock, anchor_capture_time};
use fieldproof_domain::evidence::{
    ContentHash, Format, History, ManifestFix, NodePolicy, PerceptualHash, PixelAnalysis,
    PixelLimits, PixelState, PriorCapture, PriorEvidence, VerdictOutcome, VisitWindow, analyze,
    evaluate, extract_facts, extract_facts_hashed,
};
use fieldproof_domain::geo::{LatLon, SitePoint};
use fieldproof_domain::pipeline::Requirement;
use receive::ReceivedFile;
use sea_orm::{Set, TransactionTrait};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use view::{EvidenceView, check_views};

/// The `meta` part of an upload.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct UploadMeta {
    /// UUID made on the phone at the shutter; the idempotency key.
    pub capture_id: String,
    #[serde(default)]
    pub tags: Vec<String>,
    /// photo (default) | document
    pub kind: Option<String>,
    /// For documents: the customer signed it (a supervisor confirms).
    #[serde(default)]
    pub customer_signed: bool,
    /// The phone's clocks at sending, to re-anchor the capture time.
    #[schema(value_type = Option<Object>)]
    pub device_clock: Option<DeviceClock>,
    /// Finish a resumable upload instead of sending a `file` part.
    pub upload_id: Option<String>,
}

/// Everything an upload request carried, parsed.
pub struct Upload {
    pub meta: UploadMeta,
    pub manifest_raw: Option<Vec<u8>>,
    pub signature: Option<String>,
    pub file: ReceivedFile,
    pub derivative: Option<Vec<u8>>,
}

pub enum Ingested {
    /// Stored now (201).
    Created(Value),
    /// The same capture was already stored: its first response (200).
    Replayed(Value),
}

fn capture_conflict(existing: &evidence::Model) -> ApiError {
    ApiError::new(ErrorCode::CaptureConflict)
        .with_details(json!({"capture_id": existing.capture_id, "evidence_id": existing.id}))
}

/// The answer to a capture that is already stored: its first answer when the same uploader
/// sends the same bytes again, 409 otherwise. Another user's capture is never replayed to the
/// caller, nor named (a capture id is made on the uploader's phone; reusing one elsewhere is a
/// client bug or a probe).
pub(crate) fn replay_or_conflict(
    existing: evidence::Model,
    caller: &Caller,
    sha256: &str,
) -> ApiResult<Ingested> {
    if existing.uploader_id != caller.user_id {
        return Err(ApiError::new(ErrorCode::CaptureConflict)
            .with_details(json!({"capture_id": existing.capture_id})));
    }
    if existing.sha256.eq_ignore_ascii_case(sha256) {
        Ok(Ingested::Replayed(existing.response))
    } else {
        Err(capture_conflict(&existing))
    }
}

/// A capture id as stored: the UUID in its lower-case hyphenated form (phones write
/// `UUID().uuidString` in upper case).
pub(crate) fn normal_capture_id(raw: &str) -> Option<String> {
    uuid::Uuid::parse_str(raw.trim())
        .ok()
        .map(|u| u.to_string())
}

/// Whether two capture ids name the same capture: as UUIDs, whatever their case; ids that are
/// not UUIDs (which the intake refuses by themselves) only when equal as written.
pub(crate) fn same_capture(a: &str, b: &str) -> bool {
    match (normal_capture_id(a), normal_capture_id(b)) {
        (Some(a), Some(b)) => a == b,
        (None, None) => a.trim() == b.trim(),
        _ => false,
    }
}

fn parse_meta(meta: &UploadMeta) -> ApiResult<(String, Vec<String>)> {
    let capture_id = uuid::Uuid::parse_str(meta.capture_id.trim())
        .map_err(|_| {
            ApiError::invalid_field(
                "capture_id",
                "must be a UUID made on the phone",
                "须为手机生成的 UUID",
            )
        })?
        .to_string();
    if meta.tags.len() > 10 || meta.tags.iter().any(|t| t.is_empty() || t.len() > 40) {
        return Err(ApiError::invalid_field(
            "tags",
            "at most 10 tags of 1-40 characters",
            "最多 10 个标签，每个 1-40 字符",
        ));
    }
    Ok((capture_id, meta.tags.clone()))
}

/// What the node wants from an upload.
enum Wanted {
    Photos(NodePolicy),
    Document,
}

fn wanted(template: &db::templates::StoredTemplate, node_key: &str) -> ApiResult<Wanted> {
    let node = template
        .definition
        .node(node_key)
        .ok_or_else(ApiError::not_found)?;
    for r in &node.requirements {
        if let Requirement::PhotoSet { policy, .. } = r {
            return Ok(Wanted::Photos(policy.clone()));
        }
    }
    if node.requirements.iter().any(|r| {
        matches!(
            r,
            Requirement::Document | Requirement::SignedDocument { .. }
        )
    }) {
        return Ok(Wanted::Document);
    }
    Err(ApiError::invalid_field(
        "node",
        "this step takes no uploaded evidence",
        "该环节不接受上传的证据",
    ))
}

/// Verify the signed manifest: the device is the uploader's, the signature holds over the
/// exact bytes, and it speaks of these bytes and this capture.
async fn check_manifest(
    state: &AppState,
    caller: &Caller,
    upload: &Upload,
    capture_id: &str,
    policy: &NodePolicy,
) -> ApiResult<Option<CaptureManifest>> {
    let Some(raw) = &upload.manifest_raw else {
        return Ok(None);
    };
    let invalid = |why: &str, zh: &str| {
        ApiError::new(ErrorCode::ManifestInvalid)
            .with_details(json!({"reason": why}))
            .with_message(
                format!("The capture manifest is not valid: {why}"),
                format!("拍摄记录无效：{zh}"),
            )
    };
    let manifest: CaptureManifest =
        serde_json::from_slice(raw).map_err(|_| invalid("not a capture manifest", "格式错误"))?;
    if manifest.capture_id.trim() != capture_id
        && uuid::Uuid::parse_str(manifest.capture_id.trim())
            .map(|u| u.to_string())
            .ok()
            .as_deref()
            != Some(capture_id)
    {
        return Err(invalid(
            "capture_id differs from meta",
            "capture_id 与 meta 不一致",
        ));
    }
    if !manifest
        .sha256
        .eq_ignore_ascii_case(&upload.file.sha256_hex)
    {
        return Err(invalid(
            "sha256 does not match the uploaded bytes",
            "照片哈希与上传内容不符",
        ));
    }
    match &upload.signature {
        Some(signature) => {
            let device = db::devices::find(&state.db, &caller.user_id, &manifest.device_id)
                .await?
                .filter(|d| d.revoked_at.is_none())
                .ok_or_else(|| invalid("device not enrolled for this user", "设备未登记"))?;
            let b64 = base64::engine::general_purpose::STANDARD;
            let key_bytes: [u8; 32] = b64
                .decode(&device.public_key)
                .ok()
                .and_then(|k| k.try_into().ok())
                .ok_or_else(|| {
                    ApiError::internal(anyhow::anyhow!(
                        "stored device key of {} is malformed",
                        device.id
                    ))
                })?;
            let key =
                ed25519_dalek::VerifyingKey::from_bytes(&key_bytes).map_err(ApiError::internal)?;
            let sig_bytes: [u8; 64] = b64
                .decode(signature.trim())
                .ok()
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| invalid("signature is not base64 Ed25519", "签名格式错误"))?;
            key.verify_strict(raw, &ed25519_dalek::Signature::from_bytes(&sig_bytes))
                .map_err(|_| invalid("signature does not verify", "签名校验失败"))?;
        }
        None if policy.allow_unsigned_manifest => {}
        None => {
            return Err(ApiError::new(ErrorCode::ManifestInvalid)
                .with_details(json!({"reason": "unsigned"}))
                .with_message(
                    "This step needs a signed capture manifest.",
                    "该环节需要签名的拍摄记录。",
                ));
        }
    }
    Ok(Some(manifest))
}

/// Pixels and facts, on the verification threads (one file per core at a time).
async fn analyse(
    state: &AppState,
    upload: &Upload,
) -> ApiResult<(fieldproof_domain::evidence::PhotoFacts, PixelAnalysis)> {
    let path = upload.file.path.to_path_buf();
    // A client-made JPEG rendition stands in for the pixels only of a HEIC original (which
    // this server does not decode); any other original is judged by its own pixels.
    let derivative = if matches!(
        upload.file.format,
        fieldproof_domain::evidence::Format::Heic
    ) {
        upload.derivative.clone()
    } else {
        None
    };
    // Hashed while it streamed in (receive): no second pass over the bytes.
    let known: Option<ContentHash> = upload.file.sha256_hex.parse().ok();
    state
        .verifier
        .run(move || -> std::io::Result<_> {
            let file = std::fs::File::open(&path)?;
            // SAFETY: the temp file is this request's own, created by `receive` and never
            // written again, so the mapping cannot change under the decoder (its name is
            // removed when the upload is dropped, which may happen while this runs if the
            // client went away; the mapped file stays as it was). Mapping instead of reading saves a copy of the
            // whole photo into a fresh buffer (and its page faults) per upload.
            let bytes = unsafe { memmap2::MmapOptions::new().populate().map(&file)? };
            let facts = match known {
                Some(sha) => extract_facts_hashed(&bytes, sha),
                None => extract_facts(&bytes),
            };
            let pixels = match &derivative {
                Some(d) => analyze(d, None, &PixelLimits::default()),
                None => analyze(&bytes, facts.orientation, &PixelLimits::default()),
            };
            Ok((facts, pixels))
        })
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)
}

fn prior((id, sha256, phash): &repo::PriorRow) -> Option<PriorEvidence> {
    Some(PriorEvidence {
        id: id.clone(),
        sha256: sha256.parse().ok()?,
        phash: phash
            .as_deref()
            .and_then(|h| u64::from_str_radix(h, 16).ok())
            .map(PerceptualHash),
    })
}

async fn history(
    state: &AppState,
    caller: &Caller,
    sha256: &str,
    capture_id: &str,
    (phash, max_distance): (Option<u64>, u32),
    at: Option<OffsetDateTime>,
) -> ApiResult<History> {
    let mut evidence: Vec<PriorEvidence> =
        repo::same_bytes(&state.db, &caller.org_id, sha256, capture_id)
            .await?
            .iter()
            .filter_map(prior)
            .collect();
    if let Some(phash) = phash {
        for row in repo::near_candidates(&state.db, &caller.org_id, phash, capture_id, max_distance)
            .await?
        {
            if let Some(p) = prior(&row)
                && !evidence.iter().any(|e| e.id == p.id)
            {
                evidence.push(p);
            }
        }
    }
    let mut recent_captures = Vec::new();
    if let Some(at) = at {
        for row in repo::captures_around(
            &state.db,
            &caller.user_id,
            at,
            time::Duration::hours(12),
            capture_id,
        )
        .await?
        {
            if let (id, Some(when), Some(lat), Some(lon)) = row
                && let Ok(point) = LatLon::new(lat, lon)
            {
                recent_captures.push(PriorCapture {
                    evidence_id: id,
                    at: when,
                    point,
                });
            }
        }
    }
    Ok(History {
        evidence,
        recent_captures,
    })
}

/// The visit booked on the deal, if any: the window photos are judged against.
async fn visit_window(state: &AppState, deal_row: &deal::Model) -> ApiResult<Option<VisitWindow>> {
    Ok(engine::booked_visit(&state.db, &deal_row.id)
        .await?
        .map(|v| VisitWindow {
            start: Some(v.starts_at),
            end: Some(v.ends_at),
        }))
}

async fn site_of(state: &AppState, deal_row: &deal::Model) -> ApiResult<Option<(SitePoint, i32)>> {
    let Some(site_id) = &deal_row.site_id else {
        return Ok(None);
    };
    let sites = db::customers::sites(&state.db, &deal_row.customer_id).await?;
    Ok(sites.into_iter().find(|s| &s.id == site_id).and_then(|s| {
        let crs = s.crs.parse().ok()?;
        Some((
            SitePoint::new(s.lat, s.lon, crs, s.radius_m).ok()?,
            s.utc_offset_minutes,
        ))
    }))
}

fn original_key(sha: &str) -> ApiResult<BlobKey> {
    BlobKey::parse(format!("originals/{}/{sha}", &sha[..2])).map_err(ApiError::internal)
}

fn thumb_key(sha: &str) -> ApiResult<BlobKey> {
    BlobKey::parse(format!("thumbs/{sha}.jpg")).map_err(ApiError::internal)
}

/// The whole intake of one upload.
pub async fn ingest(
    state: &AppState,
    caller: &Caller,
    deal_id: &str,
    node_key: &str,
    upload: Upload,
) -> ApiResult<Ingested> {
    let received_at = db::now();
    let (capture_id, tags) = parse_meta(&upload.meta)?;
    let sha = upload.file.sha256_hex.clone();

    if let Some(existing) = repo::find_by_capture(&state.db, &caller.org_id, &capture_id).await? {
        return replay_or_conflict(existing, caller, &sha);
    }
    let deal_row = deal_repo::find_visible(&state.db, caller, deal_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    if !engine::may_work_on(caller, &deal_row) {
        return Err(ApiError::forbidden());
    }
    if deal_row.current_node_key.as_deref() != Some(node_key) {
        return Err(ApiError::new(ErrorCode::NodeNotCurrent)
            .with_details(json!({"node": node_key, "current": deal_row.current_node_key})));
    }
    let template = engine::template_of(&state.db, &deal_row).await?;
    let kind = upload.meta.kind.as_deref().unwrap_or("photo");
    let wanted = wanted(&template, node_key)?;

    let (verdict_value, outcome, checks, facts_json, captured, phash, thumbnail, manifest) = match (
        &wanted, kind,
    ) {
        (Wanted::Photos(node_policy), "photo") => {
            if !upload.file.format.is_photo() {
                return Err(receive::unsupported(upload.file.format.as_str()));
            }
            let mut policy = node_policy.clone();
            policy.visit_window = visit_window(state, &deal_row).await?;
            let site = site_of(state, &deal_row).await?;
            if let Some((_, offset)) = site {
                policy.site_utc_offset_min = i16::try_from(offset).unwrap_or(480);
            }
            let manifest = check_manifest(state, caller, &upload, &capture_id, &policy).await?;
            let manifest_fix: Option<ManifestFix> = match &manifest {
                Some(m) => {
                    let (at, _anchor) =
                        anchor_capture_time(m, upload.meta.device_clock.as_ref(), received_at);
                    m.manifest_fix(at).map_err(|e| {
                        ApiError::new(ErrorCode::ManifestInvalid)
                            .with_details(json!({"reason": e.to_string()}))
                    })?
                }
                None => None,
            };
            let (facts, pixels) = analyse(state, &upload).await?;
            let phash = match pixels.state {
                PixelState::Hashed { phash } => Some(phash.0),
                _ => None,
            };
            let exif_at = match facts.capture.resolve(policy.site_zone()) {
                fieldproof_domain::evidence::CaptureTime::Resolved { at, .. } => Some(at),
                _ => None,
            };
            let provisional_at = exif_at.or(manifest_fix.as_ref().and_then(|m| m.captured_at));
            let history = history(
                state,
                caller,
                &sha,
                &capture_id,
                (phash, policy.near_duplicate_max_distance),
                provisional_at,
            )
            .await?;
            let verdict = evaluate(
                &facts,
                &pixels.state,
                manifest_fix.as_ref(),
                &policy,
                site.as_ref().map(|(s, _)| s),
                &history,
                received_at,
            );
            let point = facts
                .gps
                .valid()
                .map(|g| g.point)
                .or(manifest_fix.as_ref().map(|m| m.point));
            let captured_at = verdict
                .captured_at
                .or(manifest_fix.as_ref().and_then(|m| m.captured_at));
            let source = verdict
                .captured_at_source
                .map(|s| {
                    serde_json::to_value(s)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default()
                })
                .or(captured_at.map(|_| "manifest".to_owned()));
            let facts_json = json!({
                "make": facts.make, "model": facts.model, "software": facts.software,
                "width": facts.width, "height": facts.height,
                "gps": facts.gps.valid().map(|g| json!({"lat": g.point.lat(), "lon": g.point.lon(), "accuracy_m": g.accuracy_m})),
                "manifest_fix": manifest_fix.as_ref().map(|m| json!({"lat": m.point.lat(), "lon": m.point.lon(), "accuracy_m": m.accuracy_m, "is_mock": m.is_mock})),
                "captured_at_source": source,
            });
            let verdict_str = verdict.outcome.as_str().to_owned();
            (
                verdict_str,
                verdict.outcome,
                check_views(&verdict.checks),
                facts_json,
                (captured_at, point),
                phash,
                pixels.thumbnail.map(|t| t.jpeg),
                manifest,
            )
        }
        (Wanted::Document, "document") => {
            if upload.file.format != Format::Pdf {
                return Err(receive::unsupported(upload.file.format.as_str()));
            }
            // A customer's signature inside a PDF is not machine-checked here: a supervisor
            // confirms it, so a claimed-signed document waits for review.
            let outcome = if upload.meta.customer_signed {
                VerdictOutcome::NeedsReview
            } else {
                VerdictOutcome::Passed
            };
            let facts_json = json!({"customer_signed_claimed": upload.meta.customer_signed});
            (
                outcome.as_str().to_owned(),
                outcome,
                Vec::new(),
                facts_json,
                (None, None),
                None,
                None,
                None,
            )
        }
        _ => {
            return Err(ApiError::invalid_field(
                "kind",
                "this step takes a different kind of evidence",
                "该环节需要其他类型的证据",
            ));
        }
    };

    // Blob first. A lease keeps the orphan sweep off these bytes while the row is written: once
    // it is committed no sweep deletes them (see `sweep`), so the bytes are there at the commit.
    sweep::lease(state, &sha).await?;
    let original = original_key(&sha)?;
    let stored = state
        .blobs
        .put_file(
            &original,
            &upload.file.path,
            upload.file.format.media_type(),
        )
        .await?;
    let thumb = match thumbnail {
        Some(jpeg) => {
            let key = thumb_key(&sha)?;
            state.blobs.put_bytes(&key, jpeg, "image/jpeg").await?;
            Some(key)
        }
        None => None,
    };

    let findings = checks
        .iter()
        .filter(|c| c.outcome != "pass")
        .map(|c| c.code.clone())
        .collect::<Vec<_>>();
    let evidence_id = db::new_id();
    let txn = state.db.begin().await?;
    let locked = deal_repo::lock(&txn, &deal_row.id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    // A retry of this capture that raced this one past the first check and committed while
    // this one waited for the deal (it may have moved the deal on): answer as it did, before
    // the node check would refuse a photo that was in fact accepted.
    if let Some(existing) = repo::find_by_capture(&txn, &caller.org_id, &capture_id).await? {
        drop(txn);
        return replay_or_conflict(existing, caller, &sha);
    }
    if locked.current_node_key.as_deref() != Some(node_key) || locked.status != engine::STATUS_OPEN
    {
        return Err(ApiError::new(ErrorCode::NodeNotCurrent)
            .with_details(json!({"node": node_key, "current": locked.current_node_key})));
    }
    let run = deal_repo::open_run_of(&txn, &locked.id, node_key)
        .await?
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("no open run")))?;
    let passed = outcome == VerdictOutcome::Passed;
    let fmt_time = |t: OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    let mut view = EvidenceView {
        id: evidence_id.clone(),
        capture_id: capture_id.clone(),
        deal_id: locked.id.clone(),
        node: node_key.to_owned(),
        kind: kind.to_owned(),
        format: upload.file.format.as_str().to_owned(),
        sha256: sha.clone(),
        size_bytes: upload.file.size as i64,
        tags: tags.clone(),
        verdict: verdict_value.clone(),
        rule_set_version: fieldproof_domain::evidence::RULE_SET_VERSION.to_owned(),
        captured_at: captured.0.map(fmt_time),
        captured_at_source: facts_json
            .get("captured_at_source")
            .and_then(Value::as_str)
            .map(str::to_owned),
        received_at: fmt_time(received_at),
        checks,
        review_state: if passed {
            repo::REVIEW_NONE.into()
        } else {
            repo::REVIEW_PENDING.into()
        },
        review_reason: None,
        deal_current_node: None,
    };
    let row = evidence::ActiveModel {
        id: Set(evidence_id.clone()),
        org_id: Set(caller.org_id.clone()),
        deal_id: Set(locked.id.clone()),
        node_run_id: Set(run.id.clone()),
        node_key: Set(node_key.to_owned()),
        uploader_id: Set(caller.user_id.clone()),
        team_id: Set(locked.team_id.clone()),
        device_id: Set(manifest.as_ref().map(|m| m.device_id.clone())),
        capture_id: Set(capture_id.clone()),
        kind: Set(kind.to_owned()),
        format: Set(upload.file.format.as_str().to_owned()),
        sha256: Set(sha.clone()),
        size_bytes: Set(upload.file.size as i64),
        phash: Set(phash.map(|p| format!("{p:016x}"))),
        blob_key: Set(original.to_string()),
        thumb_key: Set(thumb.as_ref().map(|k| k.to_string())),
        tags: Set(json!(tags)),
        facts: Set(facts_json),
        manifest: Set(upload
            .manifest_raw
            .as_deref()
            .and_then(|raw| serde_json::from_slice(raw).ok())),
        checks: Set(serde_json::to_value(&view.checks).map_err(ApiError::internal)?),
        verdict: Set(verdict_value.clone()),
        findings: Set(format!(",{},", findings.join(","))),
        rule_set_version: Set(view.rule_set_version.clone()),
        // UTC: SQLite compares stored times as text, so every stored instant shares one offset.
        captured_at: Set(captured.0.map(|t| t.to_offset(time::UtcOffset::UTC))),
        capture_lat: Set(captured.1.map(|p| p.lat())),
        capture_lon: Set(captured.1.map(|p| p.lon())),
        received_at: Set(received_at),
        review_state: Set(view.review_state.clone()),
        reviewed_by: Set(None),
        review_reason: Set(None),
        reviewed_at: Set(None),
        response: Set(Value::Null),
    };
    let inserted = repo::insert(&txn, row, phash).await;
    let inserted = match inserted {
        Ok(row) => row,
        Err(e) if db::is_unique_violation(&e) => {
            // A concurrent retry of the same capture won the race: answer as it did.
            drop(txn);
            let existing = repo::find_by_capture(&state.db, &caller.org_id, &capture_id)
                .await?
                .ok_or_else(|| ApiError::internal(e))?;
            return replay_or_conflict(existing, caller, &sha);
        }
        Err(e) => return Err(e.into()),
    };
    if passed {
        record_fact(&txn, &inserted).await?;
    }
    db::audit::append(&txn, &locked.org_id, &locked.id, "evidence_received", Some(&caller.user_id), json!({"node": node_key, "evidence_id": evidence_id, "sha256": sha, "verdict": verdict_value, "findings": findings})).await?;
    deal_repo::insert_activity(
        &txn,
        deal_repo::NewActivity {
            org_id: &locked.org_id,
            deal_id: &locked.id,
            actor_id: &caller.user_id,
            channel: "upload",
            summary: &format!("{kind} for {node_key}: {verdict_value}"),
            occurred_at: received_at,
        },
    )
    .await?;
    let advanced = engine::advance(state, &txn, locked, &template).await?;
    view.deal_current_node = advanced.current_node_key.clone();
    let response = serde_json::to_value(&view).map_err(ApiError::internal)?;
    repo::set_response(&txn, &inserted.id, response.clone()).await?;
    txn.commit().await?;
    // Bytes found already stored could be going: an S3 delete of a sweep whose answer was lost
    // (it failed, and let leases go on) may still be carried out. Checked once, after the
    // commit, only then; bytes this upload stored itself need no look.
    if stored == PutOutcome::AlreadyExisted && !state.blobs.exists(&original).await? {
        tracing::warn!(evidence = %evidence_id, "original missing after commit; storing it again");
        state
            .blobs
            .put_file(
                &original,
                &upload.file.path,
                upload.file.format.media_type(),
            )
            .await?;
    }
    Ok(Ingested::Created(response))
}

/// The node fact an accepted piece of evidence contributes.
pub async fn record_fact<C: sea_orm::ConnectionTrait>(
    db: &C,
    row: &evidence::Model,
) -> Result<(), sea_orm::DbErr> {
    let (kind, payload) = if row.kind == "document" {
        (
            "document",
            json!({"evidence_id": row.id, "customer_signed": row.facts.get("customer_signed_claimed").and_then(Value::as_bool).unwrap_or(false)}),
        )
    } else {
        (
            "photo",
            json!({"evidence_id": row.id, "sha256": row.sha256, "tags": row.tags, "phash": row.phash}),
        )
    };
    deal_repo::insert_record(
        db,
        deal_repo::NewRecord {
            deal_id: &row.deal_id,
            node_run_id: &row.node_run_id,
            kind,
            actor_id: Some(&row.uploader_id),
            payload,
            dedup_key: Some(format!("evidence:{}", row.id)),
        },
    )
    .await
    .map(|_| ())
}
