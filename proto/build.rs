fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A vendored protoc keeps the build free of a system install.
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("upload_descriptor.bin"))
        .compile_with_config(
            config,
            &["upload/v1/upload.proto", "upload/v1/item.proto"],
            &["."],
        )?;
    println!("cargo:rerun-if-changed=upload");
    Ok(())
}
