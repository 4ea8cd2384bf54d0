//! Assignment decisions per second at the size of issue 6: 1,000 reps and 50 rule layers.
//! Figures in docs/leads.md. Most layers fail on the lead side (the common case for targeted
//! layers), some reach the reps and filter them, the last one takes everyone.

use criterion::{Criterion, criterion_group, criterion_main};
use fieldproof_domain::customer::{Fen, Seniority};
use fieldproof_domain::leads::assign::Lead;
use fieldproof_domain::leads::record::{Batch, assign_stored};
use fieldproof_domain::leads::rules::RuleContext;
use fieldproof_domain::leads::{
    Industry, LeadTags, Region, RepSnapshot, ResponseSpeed, RuleSet, SourceChannel, assign,
};
use serde_json::json;
use std::hint::black_box;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const NOW: OffsetDateTime = datetime!(2026-11-26 09:00 UTC);
const PROVINCES: [&str; 8] = [
    "浙江", "江苏", "上海", "广东", "福建", "山东", "四川", "湖北",
];

fn reps(n: usize) -> Vec<RepSnapshot> {
    (0..n)
        .map(|i| RepSnapshot {
            id: format!("rep-{i:04}"),
            team_id: Some(format!("team-{}", i % 20)),
            team_name: Some(format!("Team {}", i % 20)),
            regions: vec![PROVINCES[i % PROVINCES.len()].to_owned()],
            product_expertise: vec![["pumps", "valves", "motors"][i % 3].to_owned()],
            capacity: 10 + (i % 7) as u32,
            available: i % 25 != 0,
            protected_leads: (i % 9) as u32,
            pending_leads: (i % 6) as u32,
            deal_load_milli: ((i * 137) % 3000) as u64,
            last_assigned_at: Some(NOW - Duration::minutes((i * 7 % 600) as i64)),
        })
        .collect()
}

fn rules(layers: usize) -> RuleSet {
    let teams: Vec<(String, String)> = (0..20)
        .map(|t| (format!("team-{t}"), format!("Team {t}")))
        .collect();
    let mut list = Vec::new();
    for l in 0..layers - 1 {
        let conditions = match l % 5 {
            0 => {
                json!([{"field": "source", "in": ["trade_show"]}, {"field": "rep_team", "in": [format!("Team {}", l % 20)]}])
            }
            1 => json!([{"field": "industry", "in": ["energy", "chemicals"]}]),
            2 => json!([{"field": "annual_purchase_fen", "at_least": 10_000_000_000i64}]),
            3 => {
                json!([{"field": "province", "in": ["西藏"]}, {"field": "rep_covers_lead_region"}])
            }
            _ => json!([{"field": "rep_team", "in": ["Team 99"]}]),
        };
        list.push(json!({"name": format!("layer {l}"), "conditions": conditions}));
    }
    list.push(json!({"name": "everyone with room", "conditions": [{"field": "rep_covers_lead_region"}, {"field": "rep_pending_leads", "below": 5}]}));
    let teams_plus: Vec<(String, String)> = teams
        .into_iter()
        .chain([("team-99".to_owned(), "Team 99".to_owned())])
        .collect();
    RuleSet::parse(
        &json!({"layers": list}),
        &RuleContext { teams: &teams_plus },
    )
    .expect("bench rules")
}

fn lead(i: usize) -> Lead {
    Lead {
        key: format!("lead-{i}"),
        tags: LeadTags {
            industry: Industry::Manufacturing,
            source: SourceChannel::Website,
            annual_purchase: Fen::new(80_000_000).expect("fen"),
            seniority: Seniority::Director,
            region: Region::new(PROVINCES[i % PROVINCES.len()], ""),
            response_speed: ResponseSpeed::Fast,
            products: vec![],
        },
    }
}

fn bench(c: &mut Criterion) {
    let reps = reps(1000);
    let rules = rules(50);
    let mut i = 0;
    c.bench_function("assign: 1000 reps, 50 layers", |b| {
        b.iter(|| {
            i += 1;
            black_box(assign(&lead(i), &reps, &rules, NOW))
        })
    });
    let batch = Batch::new(&reps, &rules);
    c.bench_function("assign_stored in a batch: 1000 reps, 50 layers", |b| {
        b.iter(|| {
            i += 1;
            black_box(assign_stored(&lead(i), &reps, &rules, NOW, &batch))
        })
    });
    let decision = assign(&lead(1), &reps, &rules, NOW);
    c.bench_function("full decision to JSON (1000 reps)", |b| {
        b.iter(|| black_box(serde_json::to_vec(&decision).map(|v| v.len())))
    });
    let stored = assign_stored(&lead(1), &reps, &rules, NOW, &batch);
    println!(
        "record sizes: full {} bytes, stored {} bytes",
        serde_json::to_vec(&decision).map_or(0, |v| v.len()),
        serde_json::to_vec(&stored).map_or(0, |v| v.len())
    );
    c.bench_function("stored decision to a JSON value (1000 reps)", |b| {
        b.iter(|| black_box(serde_json::to_value(&stored).is_ok()))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
