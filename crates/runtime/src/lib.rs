//! orca-runtime (being written).
