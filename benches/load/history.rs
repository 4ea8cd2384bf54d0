//! `history-sqlite`, `history-pg`: the history the evidence checks read per upload, at the size
//! of an org with `FIELDPROOF_BENCH_EVIDENCE` photos (default 1,000,000; issue 4: "indexes so
//! this stays fast at millions of photos"): the perceptual-hash band search (a new photo, and
//! one 6 bits from a stored photo), the org's exact-bytes lookup and the rep's captures around
//! a time. Rows are seeded straight into the tables, through the server's own entities and
//! band layout; the queries are the server's own repository functions, timed in this process.
//! Stored hashes are uniform random 64-bit values: real perceptual hashes are balanced bit by
//! bit but correlated, so their band values are less evenly spread than these.

use super::*;
use fieldproof::db::entities::evidence;
use fieldproof::db::evidence::{
    band_rows, captures_around, near_band_entries, near_candidates, same_bytes,
};
use rand::{Rng, SeedableRng};
use sea_orm::{PaginatorTrait, QuerySelect};

/// Rows per insert statement: evidence has 32 columns, and SQLite takes 32,766 parameters.
const CHUNK: usize = 500;
/// Lookups timed per kind.
const PROBES: usize = 400;
/// The default near-duplicate distance (`NodePolicy::near_duplicate_max_distance`).
const MAX_DISTANCE: u32 = 10;

async fn insert_in<A, I>(db: &DatabaseConnection, rows: I)
where
    A: sea_orm::ActiveModelTrait + Send,
    I: IntoIterator<Item = A>,
{
    let mut rows = rows.into_iter().peekable();
    let txn = db.begin().await.expect("begin");
    while rows.peek().is_some() {
        let chunk: Vec<A> = rows.by_ref().take(CHUNK).collect();
        <A::Entity as EntityTrait>::insert_many(chunk)
            .exec_without_returning(&txn)
            .await
            .expect("insert chunk");
    }
    txn.commit().await.expect("commit");
}

/// One stored photo's keys, kept to look up again.
struct Stored {
    sha256: String,
    phash: u64,
}

fn percentiles(times: Vec<Duration>) -> String {
    format!(
        "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.99)),
        ms(percentile(&times, 1.0))
    )
}

pub async fn bench_history(cfg: &Config, name: &str, backend: Backend) {
    println!("\n## {name}");
    let total = env_usize("FIELDPROOF_BENCH_EVIDENCE", 1_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let bench_db = BenchDb::create(cfg, backend, dir.path()).await;
    let db = bench_db.connect(dir.path()).await;
    let org = seed_org(&db, &[20]).await;
    seed_deals(&db, &org, 200).await;
    let runs: Vec<(String, String)> = fieldproof::db::entities::node_run::Entity::find()
        .select_only()
        .column(fieldproof::db::entities::node_run::Column::Id)
        .column(fieldproof::db::entities::node_run::Column::DealId)
        .limit(200)
        .into_tuple()
        .all(&db)
        .await
        .expect("runs");
    let mut rng = rand::rngs::StdRng::seed_from_u64(29);
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let span = 3 * 365 * 86_400;
    let seeding = Instant::now();
    let mut kept: Vec<Stored> = Vec::new();
    let mut done = 0;
    while done < total {
        let n = (total - done).min(20_000);
        let mut rows = Vec::with_capacity(n);
        let mut bands = Vec::with_capacity(n * 4);
        for i in done..done + n {
            let (run, deal) = &runs[i % runs.len()];
            let (_, rep, team) = &org.reps[i % org.reps.len()];
            let phash: u64 = rng.random();
            let sha = hex::encode(Sha256::digest(i.to_le_bytes()));
            let id = fieldproof::db::new_id();
            let at = ts(now - rng.random_range(0..span));
            if i % (total / PROBES).max(1) == 0 {
                kept.push(Stored {
                    sha256: sha.clone(),
                    phash,
                });
            }
            bands.extend(band_rows(&id, &org.id, phash));
            rows.push(evidence::ActiveModel {
                id: Set(id),
                org_id: Set(org.id.clone()),
                deal_id: Set(deal.clone()),
                node_run_id: Set(run.clone()),
                node_key: Set("site_survey".into()),
                uploader_id: Set(rep.clone()),
                team_id: Set(Some(team.clone())),
                device_id: Set(None),
                capture_id: Set(uuid::Uuid::new_v4().to_string()),
                kind: Set("photo".into()),
                format: Set("jpeg".into()),
                blob_key: Set(format!("originals/{}/{sha}", &sha[..2])),
                thumb_key: Set(Some(format!("thumbs/{sha}.jpg"))),
                sha256: Set(sha),
                size_bytes: Set(4_100_000),
                phash: Set(Some(format!("{phash:016x}"))),
                tags: Set(json!(["nameplate"])),
                facts: Set(json!({})),
                manifest: Set(None),
                checks: Set(json!([])),
                verdict: Set("passed".into()),
                findings: Set(",,".into()),
                rule_set_version: Set("bench".into()),
                captured_at: Set(Some(at)),
                capture_lat: Set(Some(SITE.0)),
                capture_lon: Set(Some(SITE.1)),
                received_at: Set(at),
                review_state: Set("none".into()),
                reviewed_by: Set(None),
                review_reason: Set(None),
                reviewed_at: Set(None),
                response: Set(Value::Null),
            });
        }
        insert_in(&db, rows).await;
        insert_in(&db, bands).await;
        done += n;
    }
    if backend == Backend::Postgres {
        db.execute_unprepared("VACUUM ANALYZE evidence")
            .await
            .expect("analyze");
        db.execute_unprepared("VACUUM ANALYZE evidence_bands")
            .await
            .expect("analyze");
    } else {
        db.execute_unprepared("ANALYZE").await.expect("analyze");
    }
    let stored = evidence::Entity::find().count(&db).await.expect("count");
    println!(
        "seeded {stored} evidence rows (and {} band rows) for one org of 20 reps over 3 years in {:.0} s",
        stored * 4,
        seeding.elapsed().as_secs_f64()
    );

    let (mut new_photo, mut near_photo, mut exact, mut travel) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut entries_new, mut entries_near, mut found_near) = (0u64, 0u64, 0usize);
    for (i, k) in kept.iter().enumerate().take(PROBES) {
        let fresh: u64 = rng.random();
        let t = Instant::now();
        let found = near_candidates(&db, &org.id, fresh, "probe", MAX_DISTANCE)
            .await
            .expect("near");
        new_photo.push(t.elapsed());
        assert!(found.iter().all(|(_, _, p)| p.is_some()));
        entries_new += near_band_entries(&db, &org.id, fresh, MAX_DISTANCE)
            .await
            .expect("entries")
            .len() as u64;
        // A photo 6 bits from a stored one, spread over the hash.
        let mask: u64 = (0..6)
            .map(|j| 1u64 << ((i * 7 + j * 11) % 64))
            .fold(0, |m, b| m | b);
        let t = Instant::now();
        let found = near_candidates(&db, &org.id, k.phash ^ mask, "probe", MAX_DISTANCE)
            .await
            .expect("near");
        near_photo.push(t.elapsed());
        if found
            .iter()
            .any(|(_, _, p)| p.as_deref() == Some(format!("{:016x}", k.phash).as_str()))
        {
            found_near += 1;
        }
        entries_near += near_band_entries(&db, &org.id, k.phash ^ mask, MAX_DISTANCE)
            .await
            .expect("entries")
            .len() as u64;
        let t = Instant::now();
        let same = same_bytes(&db, &org.id, &k.sha256, "probe")
            .await
            .expect("same bytes");
        exact.push(t.elapsed());
        assert_eq!(same.len(), 1);
        let (_, rep, _) = &org.reps[i % org.reps.len()];
        let t = Instant::now();
        captures_around(
            &db,
            rep,
            ts(now - rng.random_range(0..span)),
            time::Duration::hours(12),
            "probe",
        )
        .await
        .expect("captures");
        travel.push(t.elapsed());
    }
    let probes = new_photo.len().max(1) as u64;
    println!(
        "near duplicates of a new photo (distance ≤ {MAX_DISTANCE}): {}; {} index entries read on average",
        percentiles(new_photo),
        entries_new / probes
    );
    println!(
        "near duplicates of a photo 6 bits from a stored one: {}; {} index entries; the stored one found {found_near} times of {probes}",
        percentiles(near_photo),
        entries_near / probes
    );
    println!("same bytes (org, SHA-256): {}", percentiles(exact));
    println!(
        "a rep's captures within 12 h of a time: {}",
        percentiles(travel)
    );
    db.close().await.ok();
    bench_db.drop_pg().await;
}
