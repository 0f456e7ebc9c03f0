//! Bus conformance suite (filled by the bus adapter work).
