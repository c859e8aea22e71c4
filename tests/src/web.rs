//! The web client (`clients/web`) driven by its Node scripts: the reference page in
//! headless Chromium or Firefox (`test/e2e.mjs`), the engine and Uppy pages, the
//! gateway; for the tests and the page benchmark.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::{AppOptions, MIB, TestApp};

/// The app the browser tests talk to: 5 MiB parts, so that files of a few tens
/// of MiB have parts enough to stop, reload or abort between.
pub async fn small_parts_app() -> TestApp {
    TestApp::spawn_with(AppOptions {
        env: vec![(
            "UPLOAD_DEFAULT_PART_SIZE_BYTES".into(),
            (5 * MIB).to_string(),
        )],
        ..Default::default()
    })
    .await
}

/// The browsers every browser test runs in: Debian's `chromium` and `firefox-esr`,
/// as the scripts' `WEB_BROWSER` names them.
pub const BROWSERS: [&str; 2] = ["chromium", "firefox"];

/// Runs `clients/web/test/e2e.mjs` (the reference page) in `browser` against `app`
/// with the caller's `token` and `envs` (`WEB_SCENARIO`, `WEB_FILE`, …); its JSON
/// report and everything it printed. Panics when the script fails or takes more
/// than five minutes.
pub async fn run_page(
    app: &TestApp,
    browser: &str,
    token: &str,
    envs: &[(&str, &OsStr)],
) -> (serde_json::Value, String) {
    let mut all = vec![("WEB_BROWSER", OsStr::new(browser))];
    all.extend_from_slice(envs);
    run_web_script(app, token, "e2e.mjs", &all).await
}

/// Runs the Node script `clients/web/test/<script>` against `app` (`WEB_API`,
/// `WEB_TOKEN`, `WEB_CA` the test CA's PEM, `WEB_SERVER_CERT` the server's
/// certificate, and `envs`), the package built first; the JSON of its last line
/// and everything it printed. Panics when the script fails or takes more than
/// five minutes.
pub async fn run_web_script(
    app: &TestApp,
    token: &str,
    script: &str,
    envs: &[(&str, &OsStr)],
) -> (serde_json::Value, String) {
    build_package(&web_dir()).await;
    run_node(app, token, script, envs).await
}

/// `clients/web`.
fn web_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../clients/web")
}

/// Runs `clients/web/test/<script>` with the app's settings and `envs`.
async fn run_node(
    app: &TestApp,
    token: &str,
    script: &str,
    envs: &[(&str, &OsStr)],
) -> (serde_json::Value, String) {
    let web = web_dir();
    let out = tokio::time::timeout(
        Duration::from_secs(300),
        tokio::process::Command::new("node")
            .arg(web.join("test").join(script))
            .env("WEB_API", &app.endpoint)
            .env("WEB_SERVER_CERT", &crate::test_tls().cert_path)
            .env("WEB_CA", &crate::test_tls().ca_path)
            .env("WEB_TOKEN", token)
            .envs(envs.iter().copied())
            .output(),
    )
    .await
    .expect("the script finished in time")
    .expect("node runs (deploy/local/stack.sh up installs Chromium and the package's modules)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = format!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{report}");
    let result = serde_json::from_str(stdout.lines().last().unwrap_or("{}")).expect(&report);
    (result, report)
}

/// Compiles the package (`npm run build`: TypeScript to `dist/`, then the bundles)
/// when its sources are newer than the last build, so its scripts run the code as
/// it is now. Every test runs in a process of its own and several run at once: the
/// check and the build hold a lock (`flock` on `dist/.build-lock`), and the build
/// stamps `dist/.built` (its last step, `scripts/bundle.mjs --stamp`), so one test builds
/// and the others find it done (as do all after the test command's `npm test`),
/// and no build rewrites `dist/` under a script another test is running.
async fn build_package(web: &Path) {
    static BUILT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    BUILT
        .get_or_init(|| async {
            std::fs::create_dir_all(web.join("dist")).expect("clients/web/dist");
            let script = "if [ ! -e dist/.built ] || [ -n \"$(find src page test scripts index.html package.json tsconfig.json -newer dist/.built -print -quit)\" ]; then npm run --silent build; fi";
            let out = tokio::process::Command::new("flock")
                .args(["dist/.build-lock", "sh", "-c", script])
                .current_dir(web)
                .output()
                .await
                .expect("flock and npm run");
            assert!(
                out.status.success(),
                "npm run build in clients/web: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        })
        .await;
}

/// Where a screenshot goes (`target/web/NAME`), none there yet.
pub fn screenshot_path(name: &str) -> PathBuf {
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/web");
    std::fs::create_dir_all(&shots).expect("target/web");
    let path = shots.join(name);
    let _ = std::fs::remove_file(&path);
    path
}
