//! The admin tool as tests run it: `upload-admin --operator NAME ARGS...`, parsed by
//! the tool's own command line and run against the test's database.

use clap::Parser;
use upload_server::admin::{AdminCli, Outcome, run};

use crate::TestApp;

impl TestApp {
    /// Runs `upload-admin --operator <operator> <args>` on the test's database.
    pub async fn admin(&self, operator: &str, args: &[&str]) -> Outcome {
        let argv = ["upload-admin", "--operator", operator]
            .into_iter()
            .chain(args.iter().copied());
        let cli = AdminCli::try_parse_from(argv).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        let mut conn = self.db().await;
        run(cli, &mut conn, Some(&self.store))
            .await
            .expect("the admin tool runs")
    }

    /// [`TestApp::admin`], which must succeed; what it printed.
    pub async fn admin_done(&self, operator: &str, args: &[&str]) -> String {
        match self.admin(operator, args).await {
            Outcome::Done(text) => text,
            Outcome::Refused(why) => panic!("upload-admin {args:?} refused: {why}"),
        }
    }
}
