"""`gymops operator`: run kopf with our handlers, a liveness endpoint and /metrics."""

from __future__ import annotations

import argparse
import asyncio
import logging

import kopf

from gym_operator import metrics
from gym_operator.controller.config import OperatorConfig

log = logging.getLogger(__name__)


def config_from_args(args: argparse.Namespace) -> OperatorConfig:
    """The operator's config: environment first, then the command-line flags."""
    return OperatorConfig.from_env().with_flags(
        namespaces=list(args.namespace),
        all_namespaces=bool(args.all_namespaces),
        liveness_url=args.liveness or None,
        metrics_port=int(args.metrics_port),
    )


def main(args: argparse.Namespace) -> int:
    """Serve RolloutJobs and Datasets until interrupted."""
    cfg = config_from_args(args)
    if not cfg.watch.namespaces and not cfg.watch.all_namespaces:
        log.info("no --namespace given: serving all namespaces")
    from gym_operator.controller import handlers

    registry = kopf.OperatorRegistry()
    handlers.register(registry, cfg)
    if cfg.metrics.port:
        metrics.serve(cfg.metrics.port)
        log.info("operator metrics on :%d/metrics", cfg.metrics.port)
    clusterwide = cfg.watch.all_namespaces or not cfg.watch.namespaces
    asyncio.run(
        kopf.operator(
            registry=registry,
            standalone=True,
            clusterwide=clusterwide,
            namespaces=() if clusterwide else cfg.watch.namespaces,
            liveness_endpoint=cfg.metrics.liveness_url,
            memo=kopf.Memo(cfg=cfg),
        )
    )
    return 0
