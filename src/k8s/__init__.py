"""surge on Kubernetes: the manifests `surge k8s` prints, `surge k8s collect`."""
