//! `upload-server config check`: the server's and the worker's effective
//! configuration, read from the environment exactly as they read it, defaults
//! filled in and secrets masked; or every error, each naming its variable.

use upload_config::{ServerConfig, Source, WorkerConfig};

/// The effective configuration of both services, or why it is refused.
pub fn report(src: &dyn Source) -> Result<String, String> {
    let server = ServerConfig::from_source(src);
    let worker = WorkerConfig::from_source(src);
    match (server, worker) {
        (Ok(server), Ok(worker)) => Ok(format!("server: {server:#?}\nworker: {worker:#?}\n")),
        (server, worker) => {
            let mut errors = Vec::new();
            if let Err(e) = server {
                errors.push(format!("server: {e}"));
            }
            if let Err(e) = worker {
                errors.push(format!("worker: {e}"));
            }
            Err(errors.join("\n"))
        }
    }
}
