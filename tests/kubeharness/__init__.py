"""Run a real kube-apiserver + etcd for tests and for `make cluster-up`."""

from kubeharness.controlplane import ControlPlane, free_port, kubectl_binary, testbin_dir, wait_for

__all__ = ["ControlPlane", "free_port", "kubectl_binary", "testbin_dir", "wait_for"]
