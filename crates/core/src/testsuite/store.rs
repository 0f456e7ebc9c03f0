//! Store conformance suite (filled by the store adapter work).
