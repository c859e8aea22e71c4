//! `upload-admin`: operate the upload service from a shell (see `upload_server::admin`).
//! Reads UPLOAD_DATABASE_URL (with its sslmode) and UPLOAD_OPERATOR (or --operator);
//! `release` and `confirm` also the store's settings (UPLOAD_S3_*).
//! Exit status: 0 done, 2 refused (nothing changed), 1 error.

use clap::Parser;
use upload_config::{DatabaseConfig, Env, StoreConfig};
use upload_server::admin::{AdminCli, Outcome, run};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let cli = AdminCli::parse();
    let database = DatabaseConfig::from_source(&Env)?;
    let mut conn = upload_db::establish(&database.url).await?;
    let store = if cli.command.needs_store() {
        Some(upload_storage::Store::new(&StoreConfig::from_source(&Env)?))
    } else {
        None
    };
    match run(cli, &mut conn, store.as_ref()).await? {
        Outcome::Done(text) => {
            print!("{text}");
            Ok(())
        }
        Outcome::Refused(why) => {
            eprintln!("refused: {why}");
            std::process::exit(2)
        }
    }
}
