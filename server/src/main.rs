use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use upload_config::{AuthConfig, Env, ServerConfig, StoreConfig};
use upload_domain::{Role, Scope, SellerGroup, SellerId};
use upload_server::auth::jwks::{SigningKey, jwks_document};
use upload_server::auth::{Claims, TokenKeys};
use upload_server::tls::DevCa;
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
    /// The configuration: `config check` prints the server's and the worker's
    /// effective settings (secrets masked) and exits 1 on an error.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Print a bearer token (local development): signed with the key pair of
    /// `dev-keys` (--signing-key), or with UPLOAD_JWT_SECRET where HS256 is allowed.
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
        /// The private key file `dev-keys` wrote; the token names its key and
        /// carries UPLOAD_JWT_ISSUER and UPLOAD_JWT_AUDIENCE.
        #[arg(long)]
        signing_key: Option<std::path::PathBuf>,
        /// How long the token is valid, in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl_secs: u64,
    },
    /// Make a local CA and a server certificate for 127.0.0.1 and localhost, for
    /// development: DIR/ca.pem (trusted by clients: `upload --ca-cert`),
    /// DIR/server.pem and DIR/server-key.pem (UPLOAD_TLS_CERT, UPLOAD_TLS_KEY).
    /// Kept when they exist.
    DevCerts {
        /// Where to write them.
        #[arg(long)]
        dir: std::path::PathBuf,
    },
    /// Make a local Ed25519 key pair for development: DIR/signing-key.pk8 (kept if
    /// it exists) and DIR/jwks.json, the JWKS the server reads (UPLOAD_JWKS).
    DevKeys {
        /// Where to write them.
        #[arg(long)]
        dir: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
enum ConfigAction {
    /// Print the effective configuration, or every error with its variable.
    Check,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Held until main returns: dropping it sends the spans still buffered.
    let _telemetry = upload_telemetry::init(
        &upload_config::TelemetryConfig::from_source(&Env)?,
        "upload-server",
    )?;
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
        Command::Config {
            action: ConfigAction::Check,
        } => match upload_server::config_check::report(&Env) {
            Ok(text) => {
                print!("{text}");
                Ok(())
            }
            Err(errors) => {
                eprintln!("{errors}");
                std::process::exit(1);
            }
        },
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
            signing_key,
            ttl_secs,
        } => {
            // Checked here so a typo fails now, not at the first call.
            let subject: SellerId = seller.parse()?;
            let role: Role = role.parse()?;
            let group: SellerGroup = group.parse()?;
            for word in scope.split_whitespace() {
                word.parse::<Scope>()?;
            }
            let mut claims = Claims {
                sub: Some(subject.to_string()),
                role: Some(role.as_str().to_owned()),
                group: Some(group.as_str().to_owned()),
                scope: (!scope.trim().is_empty()).then(|| scope.trim().to_owned()),
                ..Claims::default()
            };
            let ttl = Duration::from_secs(ttl_secs);
            let token = match signing_key {
                Some(path) => {
                    let der = std::fs::read(&path)
                        .with_context(|| format!("reading the signing key {}", path.display()))?;
                    let key = SigningKey::from_ed25519_pkcs8(&der).map_err(anyhow::Error::msg)?;
                    claims.iss = std::env::var("UPLOAD_JWT_ISSUER").ok();
                    claims.aud = std::env::var("UPLOAD_JWT_AUDIENCE").ok().map(Into::into);
                    claims.stamp(ttl).map_err(anyhow::Error::msg)?;
                    key.sign(&claims).map_err(anyhow::Error::msg)?
                }
                None => {
                    let auth = AuthConfig::from_source(&Env)?;
                    let secret = auth.jwt_secret.context(
                        "no --signing-key, and HS256 is not allowed here (UPLOAD_JWT_ALLOW_HS256)",
                    )?;
                    TokenKeys::new(&secret)
                        .mint_claims(claims, ttl)
                        .map_err(anyhow::Error::msg)?
                }
            };
            println!("{token}");
            Ok(())
        }
        Command::DevCerts { dir } => {
            std::fs::create_dir_all(&dir)?;
            let (ca_path, cert_path, key_path) = (
                dir.join("ca.pem"),
                dir.join("server.pem"),
                dir.join("server-key.pem"),
            );
            if !(ca_path.exists() && cert_path.exists() && key_path.exists()) {
                let ca =
                    DevCa::generate("upload local development CA").map_err(anyhow::Error::msg)?;
                let (cert, key) = ca
                    .server_cert(&["127.0.0.1", "localhost"])
                    .map_err(anyhow::Error::msg)?;
                std::fs::write(&ca_path, ca.cert_pem())?;
                std::fs::write(&cert_path, cert)?;
                let _ = std::fs::remove_file(&key_path);
                write_private(&key_path, key.as_bytes())?;
            }
            eprintln!("dev certificates in {}", dir.display());
            Ok(())
        }
        Command::DevKeys { dir } => {
            std::fs::create_dir_all(&dir)?;
            let key_path = dir.join("signing-key.pk8");
            let key = match std::fs::read(&key_path) {
                Ok(der) => SigningKey::from_ed25519_pkcs8(&der).map_err(anyhow::Error::msg)?,
                Err(_) => {
                    let (key, der) = SigningKey::generate_ed25519().map_err(anyhow::Error::msg)?;
                    write_private(&key_path, &der)?;
                    key
                }
            };
            let jwks = jwks_document(&[&key]).map_err(anyhow::Error::msg)?;
            std::fs::write(dir.join("jwks.json"), jwks)?;
            eprintln!("dev keys in {}: key id {}", dir.display(), key.kid());
            Ok(())
        }
    }
}

/// Writes a private key readable by its owner alone.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)?;
    Ok(())
}
