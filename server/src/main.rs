use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use upload_config::{AuthConfig, Env, ServerConfig, StoreConfig};
use upload_domain::{Role, Scope, SellerGroup, SellerId};
use upload_server::auth::{Claims, TokenKeys};
use upload_storage::{LifecycleRules, Store, apply_bucket_rules};

/// The upload service's gRPC server.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Apply database migrations and the buckets' lifecycle and CORS rules.
    Setup,
    /// Print a bearer token, signed with UPLOAD_JWT_SECRET (local development).
    MintToken {
        /// The subject: a seller's or buyer's id, a service's or operator's name.
        #[arg(long, alias = "subject")]
        seller: String,
        /// seller, buyer, service or ops.
        #[arg(long, default_value = "seller")]
        role: String,
        /// A seller's group: standard or premium.
        #[arg(long, default_value = "standard")]
        group: String,
        /// A service's scopes, space-separated (for example "items:submit access:grant").
        #[arg(long, default_value = "")]
        scope: String,
        /// How long the token is valid, in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl_secs: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let cfg = ServerConfig::from_env()?;
            let state = upload_server::build_state(&cfg).await?;
            let listener = tokio::net::TcpListener::bind(cfg.listen_addr)
                .await
                .with_context(|| {
                    format!("cannot listen on {} (UPLOAD_GRPC_ADDR)", cfg.listen_addr)
                })?;
            tracing::info!(addr = %listener.local_addr()?, "upload server listening");
            upload_server::serve(&cfg, state, listener, upload_server::shutdown_signal()).await
        }
        Command::Setup => {
            let db = upload_config::DatabaseConfig::from_source(&Env)?;
            upload_db::run_migrations(&db.url)
                .await
                .context("running migrations")?;
            let store = Store::new(&StoreConfig::from_source(&Env)?);
            apply_bucket_rules(&store, &LifecycleRules::default())
                .await
                .context("applying bucket rules")?;
            eprintln!("setup done: migrations applied, bucket rules set");
            Ok(())
        }
        Command::MintToken {
            seller,
            role,
            group,
            scope,
            ttl_secs,
        } => {
            let auth = AuthConfig::from_source(&Env)?;
            // Checked here so a typo fails now, not at the first call.
            let subject: SellerId = seller.parse()?;
            let role: Role = role.parse()?;
            let group: SellerGroup = group.parse()?;
            for word in scope.split_whitespace() {
                word.parse::<Scope>()?;
            }
            let claims = Claims {
                sub: Some(subject.to_string()),
                role: Some(role.as_str().to_owned()),
                group: Some(group.as_str().to_owned()),
                scope: (!scope.trim().is_empty()).then(|| scope.trim().to_owned()),
                ..Claims::default()
            };
            let token = TokenKeys::new(&auth.jwt_secret)
                .mint_claims(claims, Duration::from_secs(ttl_secs))
                .map_err(anyhow::Error::msg)?;
            println!("{token}");
            Ok(())
        }
    }
}
