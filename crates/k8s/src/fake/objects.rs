//! The fake API server's objects: pods and ConfigMaps by namespace and name, one resource
//! version counter, and the history of changes that watches replay (bounded; what falls out
//! of it, or is expired on purpose, answers `410 Gone`).

use std::collections::{BTreeMap, HashMap, VecDeque};

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::ResourceExt;
use serde_json::Value;
use tokio::sync::broadcast;

/// How many changes a watch can resume from.
const HISTORY: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Pod,
    ConfigMap,
}

impl Kind {
    pub fn resource(self) -> &'static str {
        match self {
            Kind::Pod => "pods",
            Kind::ConfigMap => "configmaps",
        }
    }
}

/// One change, as a watch event carries it.
#[derive(Debug, Clone)]
pub struct Change {
    pub rv: u64,
    pub kind: Kind,
    pub event_type: &'static str,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    pub object: Value,
}

pub type Key = (String, String);

pub struct Objects {
    pub rv: u64,
    pub pods: BTreeMap<Key, Pod>,
    pub config_maps: BTreeMap<Key, ConfigMap>,
    /// Container logs by pod.
    pub logs: HashMap<Key, Vec<u8>>,
    history: VecDeque<Change>,
    /// Watches from below this resource version are gone (410).
    pub floor: u64,
    changes: broadcast::Sender<Change>,
}

impl Objects {
    pub fn new() -> Self {
        Self {
            rv: 1,
            pods: BTreeMap::new(),
            config_maps: BTreeMap::new(),
            logs: HashMap::new(),
            history: VecDeque::new(),
            floor: 0,
            changes: broadcast::channel(4096).0,
        }
    }

    pub fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    /// Stores a pod (its resource version set to a new one) and records the change.
    pub fn put_pod(&mut self, mut pod: Pod, event_type: &'static str) -> Pod {
        let rv = self.next_rv();
        pod.metadata.resource_version = Some(rv.to_string());
        let key = (pod.namespace().unwrap_or_default(), pod.name_any());
        self.record(
            rv,
            Kind::Pod,
            event_type,
            &key.0,
            pod.labels().clone(),
            &pod,
        );
        if event_type == "DELETED" {
            self.pods.remove(&key);
            self.logs.remove(&key);
        } else {
            self.pods.insert(key, pod.clone());
        }
        pod
    }

    pub fn put_config_map(&mut self, mut cm: ConfigMap, event_type: &'static str) -> ConfigMap {
        let rv = self.next_rv();
        cm.metadata.resource_version = Some(rv.to_string());
        let key = (cm.namespace().unwrap_or_default(), cm.name_any());
        self.record(
            rv,
            Kind::ConfigMap,
            event_type,
            &key.0,
            cm.labels().clone(),
            &cm,
        );
        if event_type == "DELETED" {
            self.config_maps.remove(&key);
        } else {
            self.config_maps.insert(key, cm.clone());
        }
        cm
    }

    fn record<T: serde::Serialize>(
        &mut self,
        rv: u64,
        kind: Kind,
        event_type: &'static str,
        namespace: &str,
        labels: BTreeMap<String, String>,
        object: &T,
    ) {
        let change = Change {
            rv,
            kind,
            event_type,
            namespace: namespace.to_owned(),
            labels,
            object: serde_json::to_value(object).unwrap_or(Value::Null),
        };
        if self.history.len() >= HISTORY {
            if let Some(old) = self.history.pop_front() {
                self.floor = self.floor.max(old.rv);
            }
        }
        self.history.push_back(change.clone());
        let _ = self.changes.send(change);
    }

    /// The changes after `rv` and a receiver of the later ones, taken together (no gap);
    /// `None` when `rv` is older than the history (410 Gone).
    pub fn watch_from(&self, rv: u64) -> Option<(Vec<Change>, broadcast::Receiver<Change>)> {
        if rv < self.floor {
            return None;
        }
        let backlog = self.history.iter().filter(|c| c.rv > rv).cloned().collect();
        Some((backlog, self.changes.subscribe()))
    }

    /// A receiver of the changes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    /// Forgets the history: every watch resuming from an earlier version gets `410 Gone`.
    pub fn expire_history(&mut self) {
        self.history.clear();
        self.floor = self.rv + 1;
    }
}

/// An equality-based label selector (`a=b,c==d,e!=f`).
#[derive(Debug, Clone, Default)]
pub struct Selector {
    terms: Vec<(String, String, bool)>,
}

impl Selector {
    pub fn parse(text: Option<&str>) -> Result<Self, String> {
        let mut terms = Vec::new();
        for term in text
            .unwrap_or("")
            .split(',')
            .filter(|t| !t.trim().is_empty())
        {
            let (key, value, equal) = if let Some((k, v)) = term.split_once("!=") {
                (k, v, false)
            } else if let Some((k, v)) = term.split_once("==") {
                (k, v, true)
            } else if let Some((k, v)) = term.split_once('=') {
                (k, v, true)
            } else {
                return Err(format!("unable to parse requirement: {term}"));
            };
            terms.push((key.trim().to_owned(), value.trim().to_owned(), equal));
        }
        Ok(Self { terms })
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.terms
            .iter()
            .all(|(k, v, equal)| (labels.get(k) == Some(v)) == *equal)
    }
}
