//! The API on the real stack, one module per RPC (the ItemService's access calls
//! together in `access`), plus authentication, the authorization matrix
//! (`authorization`) and gRPC-web across them, and the
//! hostile-input suite (`hostile_input`) across every RPC and the store.

mod abort_upload;
mod access;
mod auth;
mod authorization;
mod complete_upload;
mod create_upload;
mod get_download_url;
mod get_item;
mod get_upload;
mod grpc_web;
mod health;
mod hostile_input;
mod jwks;
mod list_uploaded_parts;
mod list_versions;
mod set_current_version;
mod sign_part;
mod submit_item;
mod tls;
mod watch_item;
mod watch_progress;

use upload_e2e::pb;

pub(crate) fn only_file(item: &pb::Item) -> &pb::ItemFile {
    assert_eq!(item.files.len(), 1, "{item:?}");
    &item.files[0]
}
