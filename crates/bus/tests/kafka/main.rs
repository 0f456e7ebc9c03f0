//! The Kafka bus against a tansu broker in a process of its own: the bus conformance suite
//! over single-partition topics (every case) and over three partitions (order per aggregate),
//! then the adapter's own cases (topics, DLQ topic, rebalance, relay).

mod adapter;
mod fixture;

mod one_partition {
    integr8s_core::bus_test_suite!(fixture: crate::fixture::bus_fixture(1));
}

mod three_partitions {
    integr8s_core::bus_test_suite!(fixture: crate::fixture::bus_fixture(3), partitioned);
}
