//! A bounded memory of recently seen keys: the in-process dedupe of both buses (sequence
//! numbers already published, event ids already acknowledged).

use std::borrow::Borrow;
use std::collections::{HashSet, VecDeque};
use std::hash::Hash;

/// Remembers the last `capacity` keys inserted; older ones are forgotten first.
pub(crate) struct Recent<K> {
    seen: HashSet<K>,
    order: VecDeque<K>,
    capacity: usize,
}

impl<K: Hash + Eq + Clone> Recent<K> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            seen: HashSet::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Records `key`; false if it was already remembered.
    pub(crate) fn first_time(&mut self, key: K) -> bool {
        if !self.seen.insert(key.clone()) {
            return false;
        }
        self.order.push_back(key);
        if self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        true
    }

    #[cfg_attr(not(feature = "kafka"), allow(dead_code))]
    pub(crate) fn contains<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.seen.contains(key)
    }
}

#[cfg(test)]
mod tests {
    use super::Recent;

    #[test]
    fn remembers_up_to_capacity_then_forgets_the_oldest() {
        let mut r = Recent::new(2);
        assert!(r.first_time(1));
        assert!(!r.first_time(1));
        assert!(r.first_time(2));
        assert!(r.first_time(3));
        assert!(!r.contains(&1));
        assert!(r.contains(&2) && r.contains(&3));
        assert!(r.first_time(1));
    }
}
