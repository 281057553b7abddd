"""`make cluster`: the test control plane in the foreground until Ctrl-C."""

from __future__ import annotations

import signal
import sys
import threading

from cluster.fixtures import start_cluster, stop_cluster


def main() -> int:
    kube = start_cluster()
    path = kube.kubeconfig
    sys.stdout.write(
        f"control plane up: {kube.plane.server} (node {kube.agent.node})\n"
        f"logs: {kube.plane.logs}\n"
        f"kubeconfig: {path}\nexport KUBECONFIG={path}\nCtrl-C stops it all.\n"
    )
    sys.stdout.flush()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop_cluster(kube)
    return 0


if __name__ == "__main__":
    sys.exit(main())
