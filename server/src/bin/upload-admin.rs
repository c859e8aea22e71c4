//! `upload-admin`: operate the upload service from a shell (see `upload_server::admin`).
//! Reads UPLOAD_DATABASE_URL (with its sslmode) and UPLOAD_OPERATOR (or --operator).
//! Exit status: 0 done, 2 refused (nothing changed), 1 error.

use clap::Parser;
use upload_config::{DatabaseConfig, Env};
use upload_server::admin::{AdminCli, Outcome, run};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let cli = AdminCli::parse();
    let database = DatabaseConfig::from_source(&Env)?;
    let mut conn = upload_db::establish(&database.url).await?;
    match run(cli, &mut conn).await? {
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
