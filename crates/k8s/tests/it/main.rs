//! Tests of the Kubernetes executor: the generated Pod and ConfigMap, the deploy manifests,
//! and the whole pipeline with the k8s worker and pod monitor against a fake API server whose
//! kubelet runs pods in the local sandbox.

mod harness;

mod e2e;
mod failures;
mod manifests;
mod pod_spec;
mod restart;
