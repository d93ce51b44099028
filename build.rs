//! Compiles `proto/` into Rust with tonic-prost-build. protoc comes from
//! protoc-bin-vendored, so building needs no system protoc.

use std::{env, io, path::PathBuf};

const PROTOS: &[&str] = &[
    "proto/commpro/messaging/v1/types.proto",
    "proto/commpro/messaging/v1/messaging.proto",
    "proto/commpro/messaging/v1/mailbox.proto",
    "proto/commpro/messaging/v1/admin.proto",
    "proto/commpro/messaging/v1/ingest.proto",
];

fn main() -> io::Result<()> {
    let out_dir = PathBuf::from(env::var("OUT_DIR").map_err(io::Error::other)?);
    let protoc = protoc_bin_vendored::protoc_bin_path().map_err(io::Error::other)?;

    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc);

    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("messaging_descriptor.bin"))
        .compile_with_config(config, PROTOS, &["proto"])?;

    // Rebuild when any proto changes, including files added to the folder.
    println!("cargo:rerun-if-changed=proto");
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    Ok(())
}
