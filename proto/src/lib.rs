//! Generated Rust code for the `upload.v1` gRPC API (uploads and items).

/// The `upload.v1` package.
pub mod v1 {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("upload.v1");

    /// The encoded file descriptor set, for gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("upload_descriptor");
}
