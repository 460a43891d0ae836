//! orca-net (being written).
