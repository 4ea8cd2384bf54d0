//! `leads-sqlite`, `leads-pg`: intake-to-assigned latency at the size of issue 6 — 1,000 reps in
//! 10 teams, a 50-layer rule set, `FIELDPROOF_BENCH_LEADS` existing leads (default 1,000,000) and
//! `FIELDPROOF_BENCH_LEAD_DEALS` open deals (default 20,000) —
//! under bursts of `FIELDPROOF_BENCH_LEAD_BURST` (200) concurrent `POST /api/v1/leads`, each of
//! which answers only once its lead is stored and assigned. The client-side time of each request
//! is the intake-to-assigned latency; the server's own `assigned_at − created_at` is printed too.

use super::*;
use fieldproof::db::entities::{lead, rep_profile};
use fieldproof::services::leads::{Origin, new_row};
use fieldproof_domain::customer::{Fen, Name, Seniority};
use fieldproof_domain::leads::import::LeadDraft;
use fieldproof_domain::leads::{Industry, Region, SourceChannel};
use sea_orm::{ColumnTrait, QueryFilter, QueryOrder, QuerySelect};

/// Bursts sent before measuring (see where they are sent).
const WARM_UP_BURSTS: usize = 3;

/// A burst during which the ticker ([`Ticker`]) woke this much late or more was slowed by the
/// machine: with both cores busy serving a burst, a 1 ms sleep here normally wakes 1–5 ms late
/// (the scheduler lets the running threads finish their slice).
const MACHINE_STALL: Duration = Duration::from_millis(10);

/// The load generator's own evidence of the machine stalling: a thread of its own sleeps 1 ms at
/// a time and keeps the largest lateness of its wake-ups since the last [`Ticker::take`]. A
/// burst during which it was many milliseconds late ran on a machine that stopped running ready
/// threads (the VM not scheduled by its host, memory being reclaimed), whatever the server did.
struct Ticker(Arc<std::sync::atomic::AtomicU64>);

impl Ticker {
    fn start() -> Ticker {
        let late_us = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let shared = late_us.clone();
        std::thread::spawn(move || {
            // Ends with the bench process.
            loop {
                let t = Instant::now();
                std::thread::sleep(Duration::from_millis(1));
                let late = t.elapsed().saturating_sub(Duration::from_millis(1));
                let late = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
                shared.fetch_max(late, std::sync::atomic::Ordering::Relaxed);
            }
        });
        Ticker(late_us)
    }

    /// The largest lateness since the last call.
    fn take(&self) -> Duration {
        Duration::from_micros(self.0.swap(0, std::sync::atomic::Ordering::Relaxed))
    }
}
const EXPERTISE: [&str; 3] = ["pumps", "valves", "motors"];
const PROVINCES: [&str; 8] = [
    "浙江", "江苏", "上海", "广东", "福建", "山东", "四川", "湖北",
];

fn history(i: usize) -> LeadDraft {
    LeadDraft {
        company: Name::parse(&format!("历史客户{i}号有限公司")).expect("name"),
        contact_name: "张工".into(),
        phone: None,
        contact_title: "采购".into(),
        industry: Industry::Manufacturing,
        source: SourceChannel::Website,
        annual_purchase: Fen::new(10_000_000).expect("fen"),
        seniority: Seniority::Staff,
        region: Region::new(PROVINCES[i % 8], ""),
        products: vec![],
        notes: String::new(),
    }
}

/// 49 targeted layers that this burst's leads do not match (on the lead side, or on reps no one
/// passes), then one that decides on region and pending leads: every intake walks all 50.
fn fifty_layers() -> Value {
    let mut layers = Vec::new();
    for l in 0..49 {
        let conditions = match l % 5 {
            0 => {
                json!([{"field": "source", "in": ["trade_show"]}, {"field": "rep_team", "in": [format!("Team {}", l % 10)]}])
            }
            1 => json!([{"field": "industry", "in": ["energy", "chemicals"]}]),
            2 => json!([{"field": "annual_purchase_fen", "at_least": 10_000_000_000i64}]),
            3 => {
                json!([{"field": "province", "in": ["西藏"]}, {"field": "rep_covers_lead_region"}])
            }
            _ => json!([{"field": "rep_expertise", "any_of": ["turbines"]}]),
        };
        layers.push(json!({"name": format!("layer {l}"), "conditions": conditions}));
    }
    layers.push(json!({"name": "region", "conditions": [{"field": "rep_covers_lead_region"}, {"field": "rep_pending_leads", "below": 50}]}));
    json!({"layers": layers})
}

/// Bytes a process wrote (`wchar`: every write call) and sent to storage (`write_bytes`).
fn io_bytes(pid: u32) -> Option<(u64, u64)> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    let field = |key: &str| {
        io.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    Some((field("wchar:")?, field("write_bytes:")?))
}

pub async fn bench_leads(cfg: &Config, name: &str, backend: Backend) {
    println!("\n## {name}");
    println!("load average at start: {}", loadavg());
    let existing = env_usize("FIELDPROOF_BENCH_LEADS", 1_000_000);
    let burst = env_usize("FIELDPROOF_BENCH_LEAD_BURST", 200);
    let rounds = env_usize("FIELDPROOF_BENCH_LEAD_ROUNDS", 5);
    let open_deals = env_usize("FIELDPROOF_BENCH_LEAD_DEALS", 20_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let db = BenchDb::create(cfg, backend, dir.path()).await;
    let conn = db.connect(dir.path()).await;
    let started = Instant::now();
    let org = seed_org(&conn, &[100; 10]).await;
    let now = fieldproof::db::now();
    insert_chunks(
        &conn,
        org.reps
            .iter()
            .enumerate()
            .map(|(i, (_, id, _))| rep_profile::ActiveModel {
                user_id: Set(id.clone()),
                regions: Set(json!([PROVINCES[i % 8]])),
                product_expertise: Set(json!([EXPERTISE[i % 3]])),
                capacity: Set(1000),
                available: Set(i % 25 != 0),
                updated_at: Set(now),
            }),
    )
    .await;
    // History: converted leads (they weigh on the table and its indexes, not on rep loads).
    // 800 rows a statement: 33 columns stay under SQLite's 32,766 bind parameters.
    let origin = Origin::default();
    let mut k = 0;
    while k < existing {
        let rows: Vec<lead::ActiveModel> = (k..(k + 800).min(existing))
            .map(|k| {
                let mut row = new_row(&org.id, history(k), &origin, now);
                row.status = Set("converted".into());
                row.owner_id = Set(Some(org.reps[k % org.reps.len()].1.clone()));
                row.needs_assignment = Set(false);
                row
            })
            .collect();
        k += rows.len();
        lead::Entity::insert_many(rows)
            .exec_without_returning(&conn)
            .await
            .expect("history");
    }
    // Open deals weigh on rep loads, which every batch reads: 100 per customer, spread over
    // the pipeline's nodes, the customers owned round-robin by the reps (20,000 deals: 200 reps
    // with 100 each).
    seed_deals(&conn, &org, open_deals).await;
    if backend == Backend::Postgres {
        // VACUUM too: a bulk-loaded table has no visibility map yet, so index-only scans (rep
        // loads read two covering indexes) would visit the heap for every row until autovacuum
        // came round, which a server in steady state has had.
        conn.execute_unprepared("VACUUM ANALYZE")
            .await
            .expect("vacuum analyze");
        // And the seeding's half a gigabyte of WAL checkpointed now, not by a checkpoint
        // spreading its writes and fsyncs over the measured bursts (one burst of a run waited
        // 250 ms for it). `pg_checkpoint` is granted by scripts/services.sh.
        conn.execute_unprepared("CHECKPOINT")
            .await
            .expect("checkpoint");
    } else {
        // The seeding's WAL goes into the database file now, not into the measured bursts
        // through the server's checkpointer.
        conn.execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
            .await
            .expect("checkpoint");
    }
    // And whatever the seeding left dirty in the page cache written out now (`sync`): after a
    // checkpoint ~70 MB were still dirty, which the kernel writes back once 30 s old, so a
    // burst could land in that writeback and wait for it in its commit's WAL flush (one
    // PostgreSQL run's COMMITs took 154, 58 and 17 ms in three bursts in a row).
    let synced = std::process::Command::new("sync").status();
    assert!(
        synced.as_ref().is_ok_and(|s| s.success()),
        "sync: {synced:?}"
    );
    println!(
        "seeded in {:.1} s: {} leads, {} open deals, 1,000 reps in 10 teams (every 25th on leave)",
        started.elapsed().as_secs_f64(),
        count_rows(&conn, "leads").await,
        count_rows(&conn, "deals").await
    );

    let mut server = Server::start(dir.path(), &db.url, &Store::Folder);
    let client = reqwest::Client::new();
    server.wait_ready(&client).await;
    let api = Arc::new(Api {
        client,
        base: server.base.clone(),
    });
    let admin = Arc::new(api.login("bench_admin").await);
    let (status, saved) = api
        .client
        .put(format!("{}/api/v1/lead-rules", api.base))
        .bearer_auth(admin.as_str())
        .json(&fifty_layers())
        .send()
        .await
        .map(|r| (r.status().as_u16(), ()))
        .expect("rules");
    assert_eq!(status, 201, "{saved:?}");

    let server_latencies = Arc::new(Mutex::new(Vec::<f64>::new()));
    // Where a burst's time goes, per request, in ms from the moment the burst started (one
    // clock: the server runs on this machine): sent, stored (`created_at`), assigned, answered.
    let timeline = Arc::new(Mutex::new(Vec::<[f64; 4]>::new()));
    let intake = |round: usize| {
        let (api, admin, server_latencies, timeline) = (
            api.clone(),
            admin.clone(),
            server_latencies.clone(),
            timeline.clone(),
        );
        let origin = OffsetDateTime::now_utc();
        move |k: usize| {
            let (api, admin, server_latencies, timeline) = (
                api.clone(),
                admin.clone(),
                server_latencies.clone(),
                timeline.clone(),
            );
            async move {
                let body = json!({"company": format!("压测{round}-{k}号公司"), "industry": "制造业", "source": "website",
                                  "province": PROVINCES[k % 8], "annual_purchase_fen": 90_000_000});
                let since = |t: OffsetDateTime| (t - origin).as_seconds_f64() * 1000.0;
                let sent = since(OffsetDateTime::now_utc());
                let (status, lead) = api.post(&admin, "/api/v1/leads", &body).await;
                let answered = since(OffsetDateTime::now_utc());
                if status == 201 {
                    assert_eq!(lead["status"], "assigned", "{lead}");
                    let at = |k: &str| {
                        OffsetDateTime::parse(lead[k].as_str().unwrap_or_default(), &Rfc3339).ok()
                    };
                    if let (Some(c), Some(a)) = (at("created_at"), at("assigned_at")) {
                        server_latencies
                            .lock()
                            .expect("latencies")
                            .push((a - c).as_seconds_f64() * 1000.0);
                        timeline.lock().expect("timeline").push([
                            sent,
                            since(c),
                            since(a),
                            answered,
                        ]);
                    }
                }
                status
            }
        }
    };
    // Warm-up: connections, caches, the first roster. Three bursts, not one: on PostgreSQL the
    // dispatcher's two connections take turns, and the first batch on a fresh backend loads the
    // catalog entries of every table and index it writes and plans its statements — the first
    // measured burst after a single warm-up was the slowest of most runs (45–82 ms against
    // 37–46 for the rest): a new connection's first use, not the steady state.
    for warm_up in 0..WARM_UP_BURSTS {
        // Companies of their own (numbered after the measured rounds): a repeated name would be
        // a lead for an owned customer.
        drive(burst, burst, intake(rounds + 1 + warm_up)).await;
    }
    server_latencies.lock().expect("latencies").clear();
    let cpu0 = server.cpu();
    let client0 = cpu_secs(std::process::id()).unwrap_or(f64::NAN);
    let io0 = io_bytes(server.pid());
    let load0 = loadavg();
    let perf = start_perf(server.pid(), name);
    let mut all = Vec::new();
    let mut wall = Duration::ZERO;
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let ticker = Ticker::start();
    // Latencies of the bursts the ticker saw no stall in, and the stalled bursts.
    let mut steady = Vec::new();
    let mut stalled: Vec<(usize, Duration, Duration)> = Vec::new();
    for round in 1..=rounds {
        timeline.lock().expect("timeline").clear();
        ticker.take();
        let run = drive(burst, burst, intake(round)).await;
        let late = ticker.take();
        println!(
            "round {round}: {}; ticker late by up to {:.1} ms",
            run.summary("leads"),
            ms(late)
        );
        if late >= MACHINE_STALL {
            stalled.push((round, late, run.percentile(0.99)));
        } else {
            steady.extend(run.latencies.iter().copied());
        }
        let points = timeline.lock().expect("timeline").clone();
        if !points.is_empty() {
            let column = |i: usize| {
                let mut v: Vec<f64> = points.iter().map(|p| p[i]).collect();
                v.sort_by(f64::total_cmp);
                format!("{:.1}/{:.1}", v[v.len() / 2], v[v.len() - 1])
            };
            println!(
                "  timeline, ms from the burst's start, median/last: sent {}, stored {}, assigned {}, answered {}",
                column(0),
                column(1),
                column(2),
                column(3)
            );
        }
        wall += run.wall;
        all.extend(run.latencies);
        for (s, n) in run.statuses {
            *statuses.entry(s).or_insert(0) += n;
        }
    }
    stop_perf(perf);
    let cpu = server.cpu() - cpu0;
    let client_cpu = cpu_secs(std::process::id()).unwrap_or(f64::NAN) - client0;
    let io = io_bytes(server.pid())
        .zip(io0)
        .map(|(b, a)| (b.0 - a.0, b.1 - a.1));
    let total = Run {
        wall,
        latencies: all,
        statuses,
    };
    let mut inside = server_latencies.lock().expect("latencies").clone();
    inside.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        inside
            .get(((inside.len() as f64 * p).ceil() as usize).clamp(1, inside.len().max(1)) - 1)
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        "{rounds} bursts of {burst} concurrent intakes after {WARM_UP_BURSTS} warm-up bursts: {}",
        total.summary("leads")
    );
    println!(
        "intake-to-assigned (client) p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms; server's assigned_at − created_at p50 {:.1} ms, p99 {:.1} ms",
        ms(total.percentile(0.5)),
        ms(total.percentile(0.9)),
        ms(total.percentile(0.99)),
        pct(0.5),
        pct(0.99)
    );
    let steady = Run {
        wall: Duration::ZERO,
        latencies: steady,
        statuses: BTreeMap::new(),
    };
    println!(
        "bursts during which the load generator's ticker was {:.0} ms late or more (the machine stalled): {}; p99 of the other {} bursts {:.1} ms",
        ms(MACHINE_STALL),
        if stalled.is_empty() {
            "none".to_owned()
        } else {
            stalled
                .iter()
                .map(|(round, late, p99)| {
                    format!(
                        "round {round} (late {:.1} ms, p99 {:.1} ms)",
                        ms(*late),
                        ms(*p99)
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        },
        rounds - stalled.len(),
        ms(steady.percentile(0.99))
    );
    println!(
        "server CPU {:.2} s ({:.2} ms/lead), load generator {:.2} ms/lead; load average {load0} → {}",
        cpu,
        cpu * 1000.0 / total.latencies.len().max(1) as f64,
        client_cpu * 1000.0 / total.latencies.len().max(1) as f64,
        loadavg()
    );
    if let Some((written, stored)) = io {
        let per = |b: u64| b as f64 / 1024.0 / total.latencies.len().max(1) as f64;
        println!(
            "server wrote {:.1} KiB per lead ({:.1} KiB of it reached the disk)",
            per(written),
            per(stored)
        );
    }
    // The dispatcher's own view: how the bursts were cut into batches and how long each took.
    if let Ok(r) = api.client.get(format!("{}/metrics", api.base)).send().await
        && let Ok(text) = r.text().await
    {
        for line in text.lines().filter(|l| {
            l.starts_with("fieldproof_lead_batch") && !l.starts_with("fieldproof_lead_batch_phase")
        }) {
            println!("  {line}");
        }
        // Where the batches' time went (`fieldproof_lead_batch_phase_seconds`), per lead.
        let value = |line: &str| {
            line.rsplit_once(' ')
                .and_then(|(_, v)| v.parse::<f64>().ok())
        };
        let leads = text
            .lines()
            .find(|l| l.starts_with("fieldproof_lead_batch_size_sum"))
            .and_then(value)
            .unwrap_or(f64::NAN);
        use fieldproof::services::leads::dispatch::BATCH_PHASES;
        let phases: Vec<String> = BATCH_PHASES
            .iter()
            .filter_map(|phase| {
                let key = format!("fieldproof_lead_batch_phase_seconds_sum{{phase=\"{phase}\"}}");
                let line = text.lines().find(|l| l.starts_with(&key))?;
                Some(format!("{phase} {:.1}", value(line)? * 1e6 / leads))
            })
            .collect();
        println!(
            "batch phases, µs per lead (warm-up bursts included): {}",
            phases.join(", ")
        );
    }
    // A rep's and a manager's leads list (their own leads and the pool, the manager's team's
    // too, in id order), first and second page: the screen a rep opens most, at full size.
    // The manager of the team the bursts gave the most leads (the rules skip some teams).
    let busiest: Option<(Option<String>, i64)> = lead::Entity::find()
        .select_only()
        .column(lead::Column::TeamId)
        .column_as(lead::Column::Id.count(), "n")
        .filter(lead::Column::Status.eq("assigned"))
        .group_by(lead::Column::TeamId)
        .order_by_desc(lead::Column::Id.count())
        .into_tuple()
        .one(&conn)
        .await
        .expect("leads per team");
    let team = busiest.and_then(|(team, _)| team);
    let manager = org
        .teams
        .iter()
        .position(|t| Some(t) == team.as_ref())
        .map_or(&org.managers[0].0, |i| &org.managers[i].0);
    for (who, name) in [("rep", &org.reps[1].0), ("manager", manager)] {
        let token = api.login(name).await;
        let mut firsts = Vec::new();
        let mut seconds = Vec::new();
        let mut shown = 0;
        for _ in 0..10 {
            let t = Instant::now();
            let (status, page) = api.get(&token, "/api/v1/leads?limit=50").await;
            firsts.push(ms(t.elapsed()));
            assert_eq!(status, 200, "{page}");
            shown = page["items"].as_array().map_or(0, Vec::len);
            if let Some(cursor) = page["next_cursor"].as_str() {
                let t = Instant::now();
                let (status, next) = api
                    .get(&token, &format!("/api/v1/leads?limit=50&cursor={cursor}"))
                    .await;
                seconds.push(ms(t.elapsed()));
                assert_eq!(status, 200, "{next}");
            }
        }
        firsts.sort_by(f64::total_cmp);
        seconds.sort_by(f64::total_cmp);
        let median = |v: &[f64]| v.get(v.len() / 2).copied().unwrap_or(f64::NAN);
        println!(
            "a {who}'s leads list (GET /api/v1/leads?limit=50, 10 times): first page median {:.1} ms ({shown} items), next page median {:.1} ms",
            median(&firsts),
            median(&seconds)
        );
    }
    // Every burst's lead was decided once, by the rules, within capacity.
    let check = db.connect(dir.path()).await;
    let decided: Vec<(String, i64)> = lead::Entity::find()
        .select_only()
        .column(lead::Column::Status)
        .column_as(lead::Column::Id.count(), "n")
        .filter(lead::Column::Company.like("压测%"))
        .group_by(lead::Column::Status)
        .into_tuple()
        .all(&check)
        .await
        .expect("count");
    println!("burst leads by status: {decided:?}");
    drop(server);
    check.close().await.ok();
    db.drop_pg().await;
}
