//! Read consistency on the wire. Reads are served from the local state of
//! whichever controller receives them; a request carrying this metadata is
//! served linearizably: the controller first learns the leader's read index
//! (the leader confirms its leadership with a quorum) and waits until it has
//! applied that far.

/// The metadata key, and the one value that asks for a linearizable read.
pub const CONSISTENCY_KEY: &str = "orca-read-consistency";
pub const LINEARIZABLE: &str = "linearizable";

/// Marks `request` as wanting a linearizable read.
pub fn linearizable<T>(mut request: tonic::Request<T>) -> tonic::Request<T> {
    request.metadata_mut().insert(
        CONSISTENCY_KEY,
        tonic::metadata::MetadataValue::from_static(LINEARIZABLE),
    );
    request
}

/// Whether `request` asks for a linearizable read.
pub fn wants_linearizable<T>(request: &tonic::Request<T>) -> bool {
    request
        .metadata()
        .get(CONSISTENCY_KEY)
        .is_some_and(|v| v == LINEARIZABLE)
}
