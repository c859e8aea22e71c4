//! The production settings templates (`deploy/production/*.env.example`) held to
//! the services' own configuration code: together they name every variable the
//! services read and no other, their placeholders are refused, with real values
//! they parse as a server's and a worker's configuration, and their commented
//! `# NAME=value` lines are the defaults, exactly.

use std::collections::{BTreeSet, HashMap};
use upload_config::{ServerConfig, WorkerConfig};

/// The shared settings and each secrets file, as one text.
const TEMPLATES: [&str; 4] = [
    include_str!("../../../deploy/production/upload.env.example"),
    include_str!("../../../deploy/production/store.secrets.env.example"),
    include_str!("../../../deploy/production/server.secrets.env.example"),
    include_str!("../../../deploy/production/worker.secrets.env.example"),
];
/// The variables the configuration crate reads: every quoted `UPLOAD_*` name in
/// every file of `crates/config/src` (read from the folder, so a new file is
/// never left out).
fn variables_read() -> BTreeSet<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/config/src");
    let mut read = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            let source = std::fs::read_to_string(&path).unwrap();
            read.extend(
                source
                    .split('"')
                    .skip(1)
                    .step_by(2)
                    .filter(|s| is_variable(s))
                    .map(str::to_owned),
            );
        }
    }
    read
}

fn is_variable(name: &str) -> bool {
    name.starts_with("UPLOAD_")
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// The settings the templates make; with `defaults`, their commented defaults too.
fn settings(defaults: bool) -> HashMap<String, String> {
    TEMPLATES
        .iter()
        .flat_map(|t| t.lines())
        .filter_map(|line| {
            let line = if defaults {
                line.strip_prefix("# ").unwrap_or(line)
            } else {
                line
            };
            let (name, value) = line.split_once('=')?;
            is_variable(name).then(|| (name.to_owned(), value.to_owned()))
        })
        .collect()
}

/// Every `UPLOAD_...` name in `text`, wherever it stands.
fn names_in(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| is_variable(word) && word.len() > "UPLOAD_".len())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_template_names_every_variable_the_services_read_and_no_other() {
    let read = variables_read();
    assert!(read.len() > 30, "the variables were not found: {read:?}");
    let named = names_in(&TEMPLATES.concat());
    let missing: Vec<_> = read.difference(&named).collect();
    let unknown: Vec<_> = named.difference(&read).collect();
    assert!(
        missing.is_empty(),
        "read but not in the template: {missing:?}"
    );
    assert!(
        unknown.is_empty(),
        "in the template but read by nothing: {unknown:?}"
    );
}

/// The templates' settings with every placeholder replaced by a real-looking value.
fn filled_in(mut env: HashMap<String, String>) -> HashMap<String, String> {
    for (name, value) in env.iter_mut() {
        if value.contains(upload_config::PLACEHOLDER) {
            *value = value.replace(
                upload_config::PLACEHOLDER,
                &format!("real-{}", name.to_lowercase().replace('_', "-")),
            );
        }
    }
    env
}

#[test]
fn the_placeholders_are_refused_as_they_stand() {
    let env = settings(false);
    let server = ServerConfig::from_source(&env).unwrap_err().to_string();
    let worker = WorkerConfig::from_source(&env).unwrap_err().to_string();
    for err in [&server, &worker] {
        assert!(err.contains("placeholder"), "{err}");
        assert!(!err.contains("change-me"), "the value is not shown: {err}");
    }
}

#[test]
fn the_template_is_a_valid_server_and_worker_configuration() {
    let env = filled_in(settings(false));
    let server = ServerConfig::from_source(&env).expect("the server's configuration");
    let worker = WorkerConfig::from_source(&env).expect("the worker's configuration");
    // AWS S3 unless an endpoint is set, with virtual-hosted addresses.
    assert!(server.store.endpoint.is_none() && !server.store.path_style);
    assert_eq!(worker.store.temp_bucket, "marketplace-uploads-temp");
    assert!(worker.webhook.is_none());
}

#[test]
fn the_template_s_order_service_acts_for_sellers_and_is_never_given_downloads() {
    let server = ServerConfig::from_source(&filled_in(settings(false))).expect("server");
    let orders = server
        .auth
        .delegations
        .iter()
        .find(|(name, _)| name.as_str() == "orders")
        .map(|(_, d)| d.clone())
        .expect("the order service is delegated");
    assert_eq!(orders.for_roles, [upload_domain::Role::Seller]);
    assert!(
        !orders.states_group,
        "a seller's group is not the order service's to say"
    );
    // Wherever the template gives the order service scopes, downloads are not one.
    for line in TEMPLATES.iter().flat_map(|t| t.lines()) {
        if let Some(at) = line.find("orders=") {
            let scopes = line[at..].split(';').next().unwrap_or_default();
            assert!(!scopes.contains("downloads:read"), "{line}");
        }
    }
}

#[test]
fn commented_values_are_the_defaults() {
    let set = filled_in(settings(false));
    let with_defaults = filled_in(settings(true));
    assert!(
        with_defaults.len() > set.len() + 20,
        "too few commented defaults found: {}",
        with_defaults.len() - set.len()
    );
    // Debug output covers every field (secrets redacted): equal output, equal settings.
    assert_eq!(
        format!("{:?}", ServerConfig::from_source(&set).expect("server")),
        format!(
            "{:?}",
            ServerConfig::from_source(&with_defaults).expect("server with defaults")
        ),
    );
    assert_eq!(
        format!("{:?}", WorkerConfig::from_source(&set).expect("worker")),
        format!(
            "{:?}",
            WorkerConfig::from_source(&with_defaults).expect("worker with defaults")
        ),
    );
}

/// `Key=value` settings of a systemd unit, in order (a key may repeat).
fn unit(text: &str) -> Vec<(&str, &str)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .collect()
}

fn values<'a>(unit: &[(&'a str, &'a str)], key: &str) -> Vec<&'a str> {
    unit.iter()
        .filter(|(k, _)| *k == key)
        .map(|(_, v)| *v)
        .collect()
}

#[test]
fn each_unit_reads_only_the_secrets_it_uses() {
    let server = unit(include_str!(
        "../../../deploy/production/upload-server.service"
    ));
    let worker = unit(include_str!(
        "../../../deploy/production/upload-worker.service"
    ));
    let media = unit(include_str!(
        "../../../deploy/production/upload-media@.service"
    ));
    assert_eq!(
        values(&server, "EnvironmentFile"),
        [
            "/etc/upload/upload.env",
            "/etc/upload/store.secrets.env",
            "/etc/upload/server.secrets.env"
        ]
    );
    assert_eq!(
        values(&worker, "EnvironmentFile"),
        [
            "/etc/upload/upload.env",
            "/etc/upload/store.secrets.env",
            "/etc/upload/worker.secrets.env"
        ]
    );
    // ffmpeg and ffprobe: no secrets at all.
    assert_eq!(
        values(&media, "EnvironmentFile"),
        ["/etc/upload/upload.env"]
    );
}

#[test]
fn media_runs_happen_in_a_sandbox_unit_of_their_own_user() {
    let worker = unit(include_str!(
        "../../../deploy/production/upload-worker.service"
    ));
    let socket = unit(include_str!(
        "../../../deploy/production/upload-media.socket"
    ));
    let media = unit(include_str!(
        "../../../deploy/production/upload-media@.service"
    ));
    let env = settings(false);
    // The worker is told to use the socket systemd listens on, and may connect to it.
    assert_eq!(
        values(&socket, "ListenStream"),
        [env["UPLOAD_MEDIA_SANDBOX_SOCKET"].as_str()]
    );
    assert_eq!(values(&socket, "SocketGroup"), values(&worker, "Group"));
    assert_eq!(values(&socket, "SocketMode"), ["0660"]);
    assert_eq!(values(&socket, "Accept"), ["yes"]);
    // The server and the worker are different users, and only the worker's group
    // reaches the sandbox.
    let server = unit(include_str!(
        "../../../deploy/production/upload-server.service"
    ));
    assert_ne!(values(&server, "User"), values(&worker, "User"));
    assert_ne!(values(&socket, "SocketGroup"), values(&server, "Group"));
    // Each connection: one run, as a user that is not the worker's, sandboxed,
    // with no network but the store's addresses an operator allows in a drop-in.
    assert_eq!(values(&media, "IPAddressDeny"), ["any"]);
    assert!(
        values(&media, "IPAddressAllow").is_empty(),
        "the unit itself allows no address"
    );
    assert_ne!(values(&media, "User"), values(&worker, "User"));
    assert_ne!(values(&media, "User"), ["root"]);
    assert!(values(&media, "ExecStart")[0].ends_with("upload-worker media-sandbox"));
    assert_eq!(values(&media, "StandardInput"), ["socket"]);
    assert_eq!(values(&media, "StandardOutput"), ["socket"]);
    for (key, value) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("CapabilityBoundingSet", ""),
    ] {
        assert_eq!(values(&media, key), [value], "{key}");
    }
    assert!(!values(&media, "MemoryMax").is_empty());
}

/// The README's configuration section.
const README: &str = include_str!("../../../README.md");

#[test]
fn the_readme_configuration_table_names_every_variable_the_services_read_and_no_other() {
    let read = variables_read();
    let section = README
        .split("\n## Configuration\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("the README has a Configuration section");
    let named = names_in(section);
    let missing: Vec<_> = read.difference(&named).collect();
    let unknown: Vec<_> = named.difference(&read).collect();
    assert!(
        missing.is_empty(),
        "read but not in the README: {missing:?}"
    );
    assert!(
        unknown.is_empty(),
        "in the README but read by nothing: {unknown:?}"
    );
}

#[test]
fn config_check_prints_the_effective_configuration_with_secrets_masked() {
    let env = filled_in(settings(false));
    let shown = upload_server::config_check::report(&env).expect("a valid configuration");
    assert!(shown.starts_with("server: ServerConfig {"), "{shown}");
    assert!(shown.contains("\nworker: WorkerConfig {"), "{shown}");
    // Defaults filled in: the readiness interval nobody set.
    assert!(shown.contains("readiness_interval: 5s"), "{shown}");
    for (name, value) in &env {
        if name.contains("SECRET") || name.contains("PASSWORD") {
            assert!(!shown.contains(value.as_str()), "{name} shown: {shown}");
        }
    }

    let mut broken = env.clone();
    broken.insert("UPLOAD_READINESS_INTERVAL_SECS".into(), "soon".into());
    broken.insert("UPLOAD_CLAMD_TIMEOUT_SECS".into(), "-1".into());
    let errors = upload_server::config_check::report(&broken).expect_err("refused");
    assert!(
        errors.contains(
            "server: environment variable UPLOAD_READINESS_INTERVAL_SECS=\"soon\" is invalid"
        ),
        "{errors}"
    );
    assert!(
        errors.contains("worker: ") && errors.contains("UPLOAD_CLAMD_TIMEOUT_SECS"),
        "{errors}"
    );
}
