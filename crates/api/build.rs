//! Generates the tonic client and server for proto/orca/v1 (needs `protoc`:
//! Debian's protobuf-compiler, installed by deploy/install-deps.sh).
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = "../../proto";
    println!("cargo:rerun-if-changed={proto_root}");
    tonic_prost_build::configure().compile_protos(
        &[
            format!("{proto_root}/orca/v1/ecs.proto"),
            format!("{proto_root}/orca/v1/controller.proto"),
            format!("{proto_root}/orca/v1/agent.proto"),
            format!("{proto_root}/orca/v1/secrets.proto"),
            format!("{proto_root}/orca/v1/exec.proto"),
            format!("{proto_root}/orca/v1/logs.proto"),
            format!("{proto_root}/orca/v1/node.proto"),
        ],
        &[proto_root.to_string()],
    )?;
    Ok(())
}
