//! The command line: `serve`, `migrate`, `user create`, `demo`, `evidence inspect`.

use crate::config::Settings;
use crate::db;
use crate::services::accounts::{self, CreateUser};
use crate::startup::Application;
use anyhow::Context;
use clap::{Parser, Subcommand};
use fieldproof_domain::account::Role;
use fieldproof_migrations::{Migrator, MigratorTrait};
use secrecy::SecretString;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

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
    /// Seed a demo organisation and serve it (demo accounts exist only here).
    Demo {
        #[arg(long, default_value_t = 8080)]
        port: u16,
        #[arg(long, default_value = "./data/demo")]
        data_dir: PathBuf,
    },
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
            let app = Application::build_with_db(settings, conn)?;
            app.run_until_stopped().await?;
            Ok(())
        }
    }
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
