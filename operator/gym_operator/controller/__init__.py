"""kopf handlers that reconcile RolloutJob and Dataset into Kubernetes objects and status."""
