//! `fieldproof-field`: a command-line field device built on the SDK. It logs in, enrols a
//! device key, downloads deals for offline use, captures photos into the queue with an
//! immediate pre-check, shows the queue, and syncs with a progress bar.

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use fieldproof_mobile::sync::SyncProgress;
use fieldproof_mobile::{
    CaptureRequest, FieldDevice, FileKeyStore, FixInput, ItemState, SyncOptions,
};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "fieldproof-field",
    version,
    about = "A field device: capture evidence offline, sync it later"
)]
struct Cli {
    /// Where this device keeps its key, queue and photos.
    #[arg(
        long,
        env = "FIELDPROOF_FIELD_HOME",
        default_value = ".fieldproof-field",
        global = true
    )]
    home: PathBuf,
    /// Print one JSON document instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Log in; the refresh token is bound to this device.
    Login {
        #[arg(long, env = "FIELDPROOF_SERVER")]
        server: String,
        #[arg(long)]
        username: String,
        /// Prompted for when not given.
        #[arg(long, env = "FIELDPROOF_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// Defaults to the id used before, or a new one.
        #[arg(long)]
        device_id: Option<String>,
    },
    /// Generate the device key (once) and register it with the server.
    Enroll,
    /// Download your deals, their sites, visit windows and policies for offline use.
    Deals {
        /// Show the cached deals without going online.
        #[arg(long)]
        offline: bool,
    },
    /// Capture a photo into the queue (works offline) and pre-check it.
    Capture {
        photo: PathBuf,
        #[arg(long)]
        deal: String,
        #[arg(long)]
        node: String,
        #[arg(long, allow_negative_numbers = true)]
        lat: Option<f64>,
        #[arg(long, allow_negative_numbers = true)]
        lon: Option<f64>,
        #[arg(long)]
        accuracy: Option<f64>,
        /// The OS reported a mock location provider.
        #[arg(long)]
        mock: bool,
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// Skip the perceptual hash (no near-duplicate pre-check).
        #[arg(long)]
        no_pixels: bool,
    },
    /// List the queue with each item's state and reasons.
    Queue,
    /// Send everything queued; pull verdicts of items under review.
    Sync {
        /// Photos this size or larger are sent resumably.
        #[arg(long, default_value_t = 1024 * 1024)]
        resumable_threshold: u64,
        #[arg(long, default_value_t = 8 * 1024 * 1024)]
        chunk_size: u64,
        #[arg(long, default_value_t = 8)]
        max_attempts: u32,
        #[arg(long, default_value_t = 500)]
        min_delay_ms: u64,
        #[arg(long, default_value_t = 60_000)]
        max_delay_ms: u64,
        /// Keep photos after the server acknowledged them.
        #[arg(long)]
        keep_photos: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn open(home: &std::path::Path) -> anyhow::Result<FieldDevice> {
    let dir = home
        .to_str()
        .context("the home folder must be valid UTF-8")?;
    let keys = FileKeyStore::new(home.join("device.key"));
    FieldDevice::open(dir, Box::new(keys)).context("opening the device's queue")
}

fn print_json(value: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let device = open(&cli.home)?;
    match cli.command {
        Command::Login {
            server,
            username,
            password,
            device_id,
        } => {
            let password = match password {
                Some(p) => p,
                None => rpassword::prompt_password("password: ")?,
            };
            let device_id = match device_id {
                Some(id) => id,
                None => device
                    .device_id()
                    .unwrap_or_else(|_| format!("field-{}", uuid_short())),
            };
            device.login(&server, &username, &password, &device_id)?;
            if cli.json {
                print_json(&serde_json::json!({"logged_in": username, "device_id": device_id}));
            } else {
                println!("logged in as {username} on device {device_id}");
            }
        }
        Command::Enroll => {
            let key = device.enroll()?;
            if cli.json {
                print_json(
                    &serde_json::json!({"device_id": device.device_id()?, "public_key": key}),
                );
            } else {
                println!("device {} enrolled (public key {key})", device.device_id()?);
            }
        }
        Command::Deals { offline } => {
            let deals = if offline {
                device.cached_deals()?
            } else {
                device.download_deals()?
            };
            if cli.json {
                print_json(&serde_json::to_value(&deals)?);
            } else {
                for d in &deals {
                    let site = d
                        .site
                        .as_ref()
                        .map(|s| format!("{} ({}, r={} m)", s.name, s.crs, s.radius_m))
                        .unwrap_or_else(|| "no site".into());
                    let visit = d
                        .visit
                        .map(|v| format!("{} – {}", v.starts_at, v.ends_at))
                        .unwrap_or_else(|| "no visit booked".into());
                    println!(
                        "{}  {}  node={}  site={}  visit={}",
                        d.id,
                        d.title,
                        d.current_node.as_deref().unwrap_or("-"),
                        site,
                        visit
                    );
                }
                println!("{} deal(s) cached for offline use", deals.len());
            }
        }
        Command::Capture {
            photo,
            deal,
            node,
            lat,
            lon,
            accuracy,
            mock,
            tags,
            no_pixels,
        } => {
            let fix = match (lat, lon) {
                (Some(lat), Some(lon)) => Some(FixInput {
                    lat,
                    lon,
                    accuracy_m: accuracy,
                    is_mock: mock,
                }),
                (None, None) => None,
                _ => bail!("give both --lat and --lon, or neither"),
            };
            let result = device.capture(&CaptureRequest {
                photo_path: photo
                    .to_str()
                    .context("photo path must be UTF-8")?
                    .to_owned(),
                deal_id: deal,
                node_key: node,
                tags,
                fix,
                analyze_pixels: !no_pixels,
            })?;
            if cli.json {
                print_json(&serde_json::json!({
                    "capture_id": result.capture_id,
                    "sha256": result.sha256,
                    "size_bytes": result.size_bytes,
                    "precheck": result.precheck,
                }));
            } else {
                println!("queued {} ({} bytes)", result.capture_id, result.size_bytes);
                match &result.precheck {
                    None => {
                        println!("pre-check: skipped (deal not downloaded; run `deals` online)")
                    }
                    Some(report) => {
                        println!("pre-check: {}", report.outcome);
                        for f in &report.findings {
                            println!(
                                "  [{}] {}: {} / {}",
                                f.outcome, f.code, f.message, f.message_zh
                            );
                        }
                    }
                }
            }
        }
        Command::Queue => {
            let items = device.queue_items()?;
            if cli.json {
                print_json(&serde_json::to_value(&items)?);
            } else {
                for i in &items {
                    let expected = i
                        .precheck
                        .as_ref()
                        .map(|p| format!(" (pre-check: {})", p.outcome))
                        .unwrap_or_default();
                    println!(
                        "{}  {:<12} {}/{} {} bytes{}",
                        i.capture_id,
                        i.state.as_str(),
                        i.deal_id,
                        i.node_key,
                        i.size_bytes,
                        expected
                    );
                    for r in &i.reasons {
                        println!("    [{}] {}: {}", r.outcome, r.code, r.message);
                    }
                    if let (false, Some(e)) = (i.state.is_terminal(), &i.last_error) {
                        println!("    last error: {e}");
                    }
                }
                let waiting = items.iter().filter(|i| !i.state.is_terminal()).count();
                println!("{} item(s), {waiting} waiting to sync", items.len());
            }
        }
        Command::Sync {
            resumable_threshold,
            chunk_size,
            max_attempts,
            min_delay_ms,
            max_delay_ms,
            keep_photos,
        } => {
            let options = SyncOptions {
                resumable_threshold,
                chunk_size: chunk_size.max(1),
                max_attempts: max_attempts.max(1),
                min_delay: Duration::from_millis(min_delay_ms),
                max_delay: Duration::from_millis(max_delay_ms.max(min_delay_ms)),
                delete_acknowledged: !keep_photos,
                ..SyncOptions::default()
            };
            let bar = Bar::new(cli.json);
            let report = device.sync(options, &bar)?;
            bar.bar.finish_and_clear();
            if cli.json {
                print_json(&serde_json::to_value(&report)?);
            } else {
                println!(
                    "sent {}: {} accepted, {} needs review, {} rejected; {} still queued",
                    report.attempted,
                    report.accepted,
                    report.needs_review,
                    report.rejected,
                    report.still_pending
                );
                if let Some(offset) = report.clock_offset_ms {
                    println!("server clock − device clock: {offset} ms");
                }
                if report.reviews_updated > 0 {
                    println!("{} review decision(s) pulled", report.reviews_updated);
                }
            }
            match report.stopped.as_deref() {
                Some("revoked") => {
                    eprintln!("stopped: the server revoked this device's session; log in again");
                    return Ok(ExitCode::from(3));
                }
                Some(_) => {
                    eprintln!("stopped: the server could not be reached; the rest stays queued");
                    return Ok(ExitCode::from(2));
                }
                None => {}
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn uuid_short() -> String {
    let mut bytes = [0u8; 4];
    rand::Rng::fill(&mut rand::rng(), &mut bytes);
    hex::encode(bytes)
}

/// The sync progress bar (bytes), hidden for `--json` and when stderr is not a terminal.
struct Bar {
    bar: ProgressBar,
}

impl Bar {
    fn new(json: bool) -> Bar {
        let bar = if json {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(0)
        };
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Bar { bar }
    }
}

impl SyncProgress for Bar {
    fn started(&self, _items: u64, bytes: u64) {
        self.bar.set_length(bytes);
    }
    fn item_started(&self, capture_id: &str, _size: u64) {
        self.bar
            .set_message(capture_id.chars().take(13).collect::<String>());
    }
    fn bytes_sent(&self, bytes: u64) {
        self.bar.inc(bytes);
    }
    fn item_finished(&self, _capture_id: &str, state: Option<ItemState>) {
        if let Some(state) = state {
            self.bar.set_message(state.as_str());
        }
    }
    fn retrying(&self, _capture_id: &str, error: &str, delay: Duration) {
        self.bar
            .println(format!("retrying in {:.1}s: {error}", delay.as_secs_f64()));
    }
}
