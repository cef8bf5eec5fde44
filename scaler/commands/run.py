"""``scaler run``: the controller. ``scaler plan`` shares its connection flags."""

from __future__ import annotations

import argparse
import os
from typing import Any

import anyio

from scaler.commands.common import add_catalog_flag
from scaler.commands.configuration import resolve
from scaler.core.settings import Settings, preset


def add_connection_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cluster-name", required=True,
                   help="EKS cluster name: ASGs tagged k8s.io/cluster-autoscaler/<name> are managed")
    p.add_argument("--kubeconfig", help="kubeconfig file (default: in-cluster config, else "
                   "$KUBECONFIG / ~/.kube/config)")
    p.add_argument("--region", help="AWS region (default: the standard AWS chain, "
                   "AWS_REGION / AWS_DEFAULT_REGION / config)")
    add_catalog_flag(p)
    p.add_argument("--config", metavar="FILE",
                   help="settings file (YAML or JSON; docs/settings.md); SCALER_* environment "
                   "variables override it, --set overrides both")
    p.add_argument("--live-prices", action="store_true",
                   help="on-demand prices from the AWS Price List API (pricing:GetProducts) for "
                   "the cluster's region, refreshed hourly; the catalog's if a read fails")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="override a setting (e.g. idle_timeout_s=300); repeatable")
    p.add_argument("--log-format", choices=("console", "json"), default="console")


def connection_options(args: argparse.Namespace, **rest: Any) -> Any:
    """``app.RunOptions`` from the flags ``run`` and ``plan`` share, plus ``rest``."""
    from scaler import app  # the adapters load only for the commands that need them

    return app.RunOptions(
        cluster_name=args.cluster_name,
        kubeconfig=args.kubeconfig,
        region=args.region,
        catalog=args.catalog,
        settings=settings_from(args),
        live_prices=args.live_prices,
        **rest,
    )


def host_port(text: str, flag: str) -> tuple[str, int]:
    """``HOST:PORT`` (or ``:PORT``) -> (host, port); an empty host means every interface."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{flag} {text}: expected HOST:PORT, e.g. 0.0.0.0:8080")
    return host or "0.0.0.0", int(port)


def settings_from(args: argparse.Namespace) -> Settings:
    """The preset's settings < ``--config`` < ``SCALER_*`` < ``--set`` (docs/settings.md)."""
    return resolve(preset("scaler"), config=getattr(args, "config", None), environ=os.environ,
                   sets=args.set)


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "run",
        help="run the controller against a cluster",
        description="Watch pending pods and nodes; scale ASGs discovered by cluster-autoscaler's "
        "tags. AWS credentials come from the standard chain; AWS_ENDPOINT_URL is honoured.",
    )
    add_connection_flags(p)
    p.add_argument("--dry-run", action="store_true", help="log every decision, write nothing")
    p.add_argument("--once", action="store_true", help="observe, reconcile one tick, exit")
    p.add_argument("--no-leader-elect", dest="leader_elect", action="store_false",
                   help="act without holding the Lease (a single replica)")
    p.add_argument("--lease-namespace", default="scaler-system")
    p.add_argument("--lease-name", default="scaler")
    p.add_argument("--listen", default="0.0.0.0:8080", metavar="HOST:PORT",
                   help="/metrics, /healthz and /readyz (default 0.0.0.0:8080)")
    p.add_argument("--webhook-cert", metavar="FILE",
                   help="serve the pinning admission webhook with this TLS certificate "
                   "(PEM; e.g. tls.crt of a mounted cert-manager Secret); needs --webhook-key")
    p.add_argument("--webhook-key", metavar="FILE", help="the webhook certificate's key (PEM)")
    p.add_argument("--webhook-listen", default="0.0.0.0:8443", metavar="HOST:PORT",
                   help="where the webhook listens, with --webhook-cert (default 0.0.0.0:8443)")
    p.add_argument("--queue-url", help="SQS queue of EventBridge interruption notices")
    p.add_argument("--quarantine-queue-url",
                   help="where malformed or unknown messages are moved (else SQS redrive)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from scaler import app
    from scaler.adapters.observe import configure_logging

    listen_host, listen_port = host_port(args.listen, "--listen")
    if bool(args.webhook_cert) != bool(args.webhook_key):
        raise ValueError("--webhook-cert and --webhook-key go together")
    webhook_host, webhook_port = host_port(args.webhook_listen, "--webhook-listen")
    configure_logging(json=args.log_format == "json")  # once the flags are known good
    opts = connection_options(
        args,
        dry_run=args.dry_run,
        once=args.once,
        leader_elect=args.leader_elect and not args.once,
        lease_namespace=args.lease_namespace,
        lease_name=args.lease_name,
        listen_host=listen_host,
        listen_port=listen_port,
        webhook_host=webhook_host,
        webhook_port=webhook_port if args.webhook_cert else None,
        webhook_cert_file=args.webhook_cert,
        webhook_key_file=args.webhook_key,
        queue_url=args.queue_url,
        quarantine_queue_url=args.quarantine_queue_url,
    )
    anyio.run(app.run_until_signalled, opts)
    return 0
