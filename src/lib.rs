//! Generated code of the `commpro.messaging.v1` gRPC contract (see `proto/`), and the
//! encoded file descriptor set that servers hand to gRPC reflection.

/// `commpro.messaging.v1`: messages, enums, clients and servers.
pub mod v1 {
    tonic::include_proto!("commpro.messaging.v1");
}

/// Encoded `FileDescriptorSet` of every proto file, for tonic-reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("messaging_descriptor");
