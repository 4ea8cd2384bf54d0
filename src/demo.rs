//! The demo organisation: two teams, one account per role, customers with sites in Hangzhou,
//! Shenzhen (entered on an Amap picker, so GCJ-02) and Chengdu. Seeded only by `fieldproof demo`.

use crate::config::Settings;
use crate::db::{self, customers as repo, users::RepProfile};
use crate::services::accounts::{self, CreateUser};
use anyhow::Context;
use fieldproof_domain::account::Role;
use fieldproof_domain::customer::{Fen, Name, Seniority};
use fieldproof_domain::geo::{Crs, SitePoint};
use sea_orm::DatabaseConnection;
use secrecy::SecretString;

pub const DEMO_PASSWORD: &str = "fieldproof-demo";

pub const DEMO_USERS: [(&str, &str, Role, Option<usize>); 7] = [
    ("admin", "管理员 Admin", Role::Admin, None),
    ("manager1", "王经理 Wang (manager)", Role::Manager, Some(0)),
    ("rep1", "李明 Li Ming (rep)", Role::Rep, Some(0)),
    ("rep2", "陈静 Chen Jing (rep)", Role::Rep, Some(1)),
    ("presales1", "赵工 Zhao (presales)", Role::Presales, Some(0)),
    ("finance1", "孙会计 Sun (finance)", Role::Finance, Some(0)),
    (
        "supervisor1",
        "周主管 Zhou (supervisor)",
        Role::Supervisor,
        Some(0),
    ),
];

/// Seed once; a second run finds `admin` and leaves everything as it is.
pub async fn seed(db: &DatabaseConnection) -> anyhow::Result<()> {
    if db::users::find_for_login(db, "admin").await?.is_some() {
        return Ok(());
    }
    let org = db::orgs::create(db, "演示机械设备有限公司 Demo Machinery").await?;
    let teams = [
        db::teams::create(
            db,
            db::teams::NewTeam {
                org_id: &org.id,
                name: "East-China Key Accounts",
                region: "east_china",
                product_line: "industrial_pumps",
            },
        )
        .await?,
        db::teams::create(
            db,
            db::teams::NewTeam {
                org_id: &org.id,
                name: "South-China",
                region: "south_china",
                product_line: "industrial_pumps",
            },
        )
        .await?,
    ];
    let mut ids = std::collections::HashMap::new();
    for (username, display, role, team) in DEMO_USERS {
        let user = accounts::create_user(
            db,
            CreateUser {
                org_id: &org.id,
                username,
                display_name: Some(display),
                password: SecretString::from(DEMO_PASSWORD),
                role,
                team_id: team.map(|i| teams[i].id.as_str()),
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("seeding {username}: {:?}", e))?;
        ids.insert(username, (user.id, user.team_id));
    }
    for (rep, regions, capacity) in [
        ("rep1", vec!["浙江", "上海"], 12),
        ("rep2", vec!["广东", "四川"], 10),
    ] {
        let (id, _) = &ids[rep];
        let profile = RepProfile {
            regions: regions.into_iter().map(String::from).collect(),
            product_expertise: vec!["centrifugal_pumps".into(), "valves".into()],
            capacity,
            available: true,
        };
        db::users::put_rep_profile(db, id, &profile).await?;
    }
    let customers = [
        (
            "杭州恒力机械有限公司",
            "manufacturing",
            120_000_000,
            "rep1",
            "萧山厂区",
            "杭州市萧山区经济技术开发区",
            30.2281,
            120.2986,
            Crs::Wgs84,
        ),
        (
            "深圳市华南电子股份有限公司",
            "electronics",
            85_000_000,
            "rep2",
            "宝安工厂",
            "深圳市宝安区福永街道",
            22.6706,
            113.8212,
            Crs::Gcj02,
        ),
        (
            "成都蜀川食品有限公司",
            "food",
            40_000_000,
            "rep2",
            "新都生产基地",
            "成都市新都区工业东区",
            30.8030,
            104.1640,
            Crs::Wgs84,
        ),
    ];
    for (name, industry, fen, owner, site_name, address, lat, lon, crs) in customers {
        let (owner_id, team_id) = ids[owner].clone();
        let customer = repo::create(
            db,
            repo::NewCustomer {
                org_id: org.id.clone(),
                name: Name::parse(name).context("demo name")?,
                industry: industry.into(),
                annual_purchase: Fen::new(fen).context("demo amount")?,
                tags: vec!["demo".into()],
                owner_id,
                team_id,
            },
        )
        .await?;
        repo::create_contact(
            db,
            repo::NewContact {
                customer_id: customer.id.clone(),
                name: Name::parse("张总").context("demo contact")?,
                title: "总经理".into(),
                seniority: Seniority::Executive,
                phone: Some("+86 138 0000 0000".into()),
            },
        )
        .await?;
        repo::create_site(
            db,
            repo::NewSite {
                customer_id: customer.id,
                name: Name::parse(site_name).context("demo site")?,
                address: address.into(),
                place: SitePoint::new(lat, lon, crs, 300.0).context("demo site point")?,
                utc_offset_minutes: 480,
            },
        )
        .await?;
    }
    Ok(())
}

pub fn print_banner(settings: &Settings) {
    println!(
        "fieldproof demo on http://{}:{}",
        settings.host, settings.port
    );
    println!(
        "  API docs: http://{}:{}/api/docs/",
        settings.host, settings.port
    );
    println!(
        "  console:  http://{}:{}/console/ (supervisor1, manager1, admin)",
        settings.host, settings.port
    );
    println!("  data:     {}", settings.data_dir.display());
    println!("  accounts (password `{DEMO_PASSWORD}`):");
    for (username, display, role, _) in DEMO_USERS {
        println!("    {username:<12} {role:<10} {display}");
    }
}
