//! The command line: `serve`, `migrate`, `user create`, `demo`, `evidence inspect`.

use crate::config::Settings;
use crate::db;
use crate::services::accounts::{self, CreateUser};
use crate::startup::Application;
use anyhow::Context;
use clap::{Parser, Subcommand};
use fieldproof_domain::account::Role;
use fieldproof_domain::evidence::InspectOptions;
use fieldproof_domain::geo::{Crs, LatLon, SitePoint};
use fieldproof_migrations::{Migrator, MigratorTrait};
use secrecy::SecretString;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Parser)]
#[command(
    name = "fieldproof",
    version,
    about = "Sales management where the pipeline moves only on proof"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API server (migrates first unless FIELDPROOF_MIGRATE_ON_START=false).
    Serve,
    /// Apply or inspect schema migrations.
    Migrate {
        #[arg(value_enum, default_value = "up")]
        action: MigrateAction,
    },
    /// Manage accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Evidence tools.
    Evidence {
        #[command(subcommand)]
        command: EvidenceCommand,
    },
    /// Seed a demo organisation and serve it (demo accounts exist only here).
    Demo {
        #[arg(long, default_value_t = 8080)]
        port: u16,
        #[arg(long, default_value = "./data/demo")]
        data_dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum EvidenceCommand {
    /// Print what a photo claims (EXIF time, GPS, camera) and how the default rules judge it,
    /// as one JSON object. Unreadable files still print a report; only usage errors fail.
    Inspect {
        file: PathBuf,
        /// Customer site as LAT,LON (use --site=-33.9,151.2 for southern/western points).
        #[arg(long, value_parser = parse_lat_lon, allow_hyphen_values = true)]
        site: Option<(f64, f64)>,
        /// Coordinate system the site was entered in.
        #[arg(long, default_value = "wgs84")]
        crs: Crs,
        /// Site radius in metres.
        #[arg(long, default_value_t = 300.0)]
        radius: f64,
        /// Visit window start, RFC 3339.
        #[arg(long, value_parser = parse_rfc3339)]
        window_start: Option<OffsetDateTime>,
        /// Visit window end, RFC 3339.
        #[arg(long, value_parser = parse_rfc3339)]
        window_end: Option<OffsetDateTime>,
    },
    /// Time the whole verification of photos (hash, facts, decode, pHash, thumbnail, checks) as
    /// this binary runs it, and print one JSON object: median wall time per photo, photos per
    /// second and CPU per photo. The load bench takes the per-photo verification time its target
    /// is computed from here: the verification code as built into the server's own binary (the
    /// server hashes while the upload streams in, and runs the rest on its verification threads).
    Time {
        /// Photos, verified in turn.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Verifications in all (after one warm-up).
        #[arg(long, default_value_t = 15)]
        runs: usize,
        /// Threads verifying at once.
        #[arg(long, default_value_t = 1)]
        threads: usize,
    },
}

fn parse_lat_lon(raw: &str) -> Result<(f64, f64), String> {
    let (lat, lon) = raw
        .split_once(',')
        .ok_or_else(|| "expected LAT,LON".to_owned())?;
    let lat: f64 = lat
        .trim()
        .parse()
        .map_err(|_| format!("bad latitude `{lat}`"))?;
    let lon: f64 = lon
        .trim()
        .parse()
        .map_err(|_| format!("bad longitude `{lon}`"))?;
    LatLon::new(lat, lon).map_err(|e| e.to_string())?;
    Ok((lat, lon))
}

fn parse_rfc3339(raw: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(raw, &Rfc3339).map_err(|e| format!("expected RFC 3339 ({e})"))
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum MigrateAction {
    /// Apply every pending migration.
    Up,
    /// Roll back the latest migration.
    Down,
    /// List migrations and whether each is applied.
    Status,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user; the password is read from stdin (or asked for on a terminal).
    Create {
        #[arg(long)]
        username: String,
        /// rep, manager, presales, finance, supervisor or admin.
        #[arg(long)]
        role: Role,
        /// Team name.
        #[arg(long)]
        team: Option<String>,
        #[arg(long)]
        display_name: Option<String>,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Evidence {
        command:
            EvidenceCommand::Inspect {
                file,
                site,
                crs,
                radius,
                window_start,
                window_end,
            },
    } = &cli.command
    {
        return inspect(file, *site, *crs, *radius, *window_start, *window_end);
    }
    if let Command::Evidence {
        command:
            EvidenceCommand::Time {
                files,
                runs,
                threads,
            },
    } = &cli.command
    {
        return time_verification(files, *runs, *threads);
    }
    let result = actix_web::rt::System::new().block_on(run(cli.command));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", crate::telemetry::cause_chain(&e));
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            let settings = Settings::load()?;
            crate::telemetry::init(&settings.log_format);
            let app = Application::build(settings).await?;
            tracing::info!(port = app.port(), "fieldproof listening");
            app.run_until_stopped().await?;
            Ok(())
        }
        Command::Migrate { action } => {
            let settings = Settings::load()?;
            crate::telemetry::init(&settings.log_format);
            let conn = db::connect(&settings).await?;
            match action {
                MigrateAction::Up => Migrator::up(&conn, None).await?,
                MigrateAction::Down => Migrator::down(&conn, Some(1)).await?,
                MigrateAction::Status => {
                    for m in Migrator::get_pending_migrations(&conn).await? {
                        println!("pending  {}", m.name());
                    }
                    for m in Migrator::get_applied_migrations(&conn).await? {
                        println!("applied  {}", m.name());
                    }
                }
            }
            Ok(())
        }
        Command::User {
            command:
                UserCommand::Create {
                    username,
                    role,
                    team,
                    display_name,
                },
        } => {
            let settings = Settings::load()?;
            let conn = db::connect(&settings).await?;
            db::migrate_up(&conn).await?;
            let password = read_password()?;
            let org = db::orgs::first_or_create(&conn, "fieldproof").await?;
            let team_id = match team {
                Some(name) => Some(
                    db::teams::find_by_name(&conn, &org.id, &name)
                        .await?
                        .with_context(|| format!("no team named {name}"))?
                        .id,
                ),
                None => None,
            };
            let user = accounts::create_user(
                &conn,
                CreateUser {
                    org_id: &org.id,
                    username: &username,
                    display_name: display_name.as_deref(),
                    password,
                    role,
                    team_id: team_id.as_deref(),
                },
            )
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.body().message))?;
            println!("created {} ({}) id={}", user.username, user.role, user.id);
            Ok(())
        }
        // Handled before the runtime starts (it needs none).
        Command::Evidence { .. } => Ok(()),
        Command::Demo { port, data_dir } => {
            let mut settings = Settings::load()?;
            settings.port = port;
            settings.data_dir = data_dir;
            settings.database_url = None;
            crate::telemetry::init(&settings.log_format);
            let conn = db::connect(&settings).await?;
            db::migrate_up(&conn).await?;
            crate::demo::seed(&conn).await?;
            crate::demo::print_banner(&settings);
            let app = Application::build_with_db(settings, conn).await?;
            app.run_until_stopped().await?;
            Ok(())
        }
    }
}

fn inspect(
    file: &std::path::Path,
    site: Option<(f64, f64)>,
    crs: Crs,
    radius: f64,
    window_start: Option<OffsetDateTime>,
    window_end: Option<OffsetDateTime>,
) -> ExitCode {
    let site = match site
        .map(|(lat, lon)| SitePoint::new(lat, lon, crs, radius))
        .transpose()
    {
        Ok(site) => site,
        Err(e) => {
            eprintln!("error: --site/--radius: {e}");
            return ExitCode::from(2);
        }
    };
    // An unreadable file is reported like an unreadable photo: format unknown, exit 0.
    let bytes = std::fs::read(file).unwrap_or_else(|e| {
        eprintln!("note: cannot read {}: {e}", file.display());
        Vec::new()
    });
    let options = InspectOptions {
        site,
        window_start,
        window_end,
    };
    let report = fieldproof_domain::evidence::inspect(&bytes, &options, OffsetDateTime::now_utc());
    match serde_json::to_string_pretty(&report) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `fieldproof evidence time`: see [`EvidenceCommand::Time`].
fn time_verification(files: &[PathBuf], runs: usize, threads: usize) -> ExitCode {
    use fieldproof_domain::evidence::{VerifyContext, verify};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};
    let mut photos = Vec::new();
    for file in files {
        match std::fs::read(file) {
            Ok(bytes) => photos.push(bytes),
            Err(e) => {
                eprintln!("error: cannot read {}: {e}", file.display());
                return ExitCode::from(2);
            }
        }
    }
    if runs == 0 || threads == 0 {
        eprintln!("error: --runs and --threads must be at least 1");
        return ExitCode::from(2);
    }
    let ctx = VerifyContext::default();
    let now = OffsetDateTime::now_utc();
    std::hint::black_box(verify(&photos[0], None, &ctx, now));
    let next = AtomicUsize::new(0);
    let cpu0 = process_cpu();
    let started = Instant::now();
    let joined: Vec<std::thread::Result<Vec<Duration>>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut walls = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= runs {
                            return walls;
                        }
                        let photo = std::hint::black_box(&photos[i % photos.len()]);
                        let t = Instant::now();
                        std::hint::black_box(verify(photo, None, &ctx, now));
                        walls.push(t.elapsed());
                    }
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join()).collect()
    });
    let wall = started.elapsed();
    let mut walls: Vec<Duration> = joined.into_iter().flatten().flatten().collect();
    // A verification that panicked (a photo that crashes the decoder) leaves no timing.
    if walls.len() != runs {
        eprintln!("error: a verification failed; no timing");
        return ExitCode::FAILURE;
    }
    let cpu = process_cpu()
        .zip(cpu0)
        .map(|(after, before)| (after - before) * 1000.0 / runs as f64);
    walls.sort();
    let median = walls.get(walls.len() / 2).copied().unwrap_or_default();
    let report = serde_json::json!({
        "photos": photos.len(),
        "runs": runs,
        "threads": threads,
        "median_ms": median.as_secs_f64() * 1000.0,
        "photos_per_second": runs as f64 / wall.as_secs_f64(),
        "cpu_ms_per_photo": cpu,
    });
    println!("{report}");
    ExitCode::SUCCESS
}

/// This process's user + system CPU seconds, from /proc (Linux); `None` elsewhere.
fn process_cpu() -> Option<f64> {
    proc_cpu_secs("/proc/self/stat")
}

/// User + system CPU seconds from a `stat` file of /proc: a process's (`/proc/<pid>/stat`) or
/// one thread's (`/proc/<pid>/task/<tid>/stat`). Also read by the load bench.
pub fn proc_cpu_secs(stat_path: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(stat_path).ok()?;
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    // After the command: utime and stime are fields 14 and 15, in clock ticks (USER_HZ = 100).
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn read_password() -> anyhow::Result<SecretString> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("password: ")?;
        let again = rpassword::prompt_password("again: ")?;
        anyhow::ensure!(first == again, "the two passwords differ");
        Ok(SecretString::from(first))
    } else {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        Ok(SecretString::from(
            line.trim_end_matches(['\r', '\n']).to_owned(),
        ))
    }
}
