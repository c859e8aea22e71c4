//! The store's access key, shared by the SDK clients and the part signer.

use aws_credential_types::Credentials;
use upload_config::StoreConfig;

/// The store's access key, from configuration.
pub(crate) fn credentials(cfg: &StoreConfig) -> Credentials {
    Credentials::new(
        cfg.access_key_id.clone(),
        cfg.secret_access_key.clone(),
        None,
        None,
        "upload-config",
    )
}
