"""A real Kubernetes control plane for the tests, and the node agent standing in for the kubelet."""
