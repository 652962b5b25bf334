//! The Kubernetes provider against the real kube-apiserver. (Being written.)
