"""The test cluster for humans: ``python -m tests.cluster {up,down,status} [api|node]``.

``up`` starts a tier (default ``node``) and leaves it running after this command exits; ``down`` stops it
(without a tier: every tier); ``status`` reports. A subcommand is a function taking the parsed arguments and
returning an exit code, registered in `COMMANDS` with a function that declares its arguments, so a new one
(e.g. ``demo``) is one more entry. `bring_up` is the building block such commands share.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from tests.cluster import apitier, binaries, clusters, components, nodetier

Command = Callable[[argparse.Namespace], int]


def say(message: str) -> None:
    print(f"[cluster] {message}", flush=True)


def bring_up(tier: str) -> apitier.ApiCluster:
    """Start the tier for a human (it outlives this process), or exit with a clear message."""
    say(f"starting the {tier} tier in {clusters.directory(tier)} ...")
    try:
        cluster = clusters.start(tier, owner="cli")
    except (binaries.MissingBinaries, clusters.ClusterBusy) as error:
        raise SystemExit(f"[cluster] {error}") from None
    except components.ComponentFailed as error:
        raise SystemExit(f"[cluster] could not start the {tier} tier: {error}") from None
    steps = ", ".join(
        f"{name} {seconds:.1f}s" for name, seconds in cluster.timings.items() if name != "total"
    )
    say(f"{tier} tier up in {cluster.timings['total']:.1f}s ({steps})")
    return cluster


def print_usage_hints(cluster: apitier.ApiCluster) -> None:
    say(f"logs in {cluster.log_dir}")
    if isinstance(cluster, nodetier.NodeCluster):
        registry = cluster.registry
        say(f"registries: {registry.public.host} (public), {registry.private.host} "
            f"(user {registry.username!r}, password {registry.password!r})")  # fmt: skip
        say(f"images: {registry.busybox}, {registry.private_busybox}, {registry.placeholder}")
    say(f"stop it with: .venv/bin/python -m tests.cluster down {cluster.tier}")
    print(f"export KUBECONFIG={cluster.kubeconfig}")


def up(args: argparse.Namespace) -> int:
    path = clusters.directory(args.tier)
    state = apitier.read_state(path) or {}
    if state.get("owner") == "cli" and clusters.running_components(path):
        say(f"already running; `down {args.tier}` first to restart it")
        print(clusters.status(args.tier))
        return 0
    print_usage_hints(bring_up(args.tier))
    return 0


def down(args: argparse.Namespace) -> int:
    from tests.cluster import demo

    for tier in [args.tier] if args.tier else list(clusters.TIERS):
        demo.stop_operator(clusters.directory(tier))
        say(clusters.stop_cli_cluster(tier))
    return 0


def run_demo(args: argparse.Namespace) -> int:
    from tests.cluster import demo

    return demo.main(local=args.local)


def status(args: argparse.Namespace) -> int:
    for tier in [args.tier] if args.tier else list(clusters.TIERS):
        print(clusters.status(tier))
    return 0


def _tier(parser: argparse.ArgumentParser, *, default: str | None) -> None:
    parser.add_argument("tier", nargs="?", choices=list(clusters.TIERS), default=default)


COMMANDS: dict[str, tuple[Command, str, Callable[[argparse.ArgumentParser], None]]] = {
    "up": (up, "start a tier (default: node) and leave it running", lambda p: _tier(p, default="node")),
    "down": (down, "stop a tier (default: all), keeping its logs", lambda p: _tier(p, default=None)),
    "status": (status, "show what runs", lambda p: _tier(p, default=None)),
    "demo": (
        run_demo,
        "node tier + podline installed by Helm + an example Pipeline, logs printed",
        lambda p: p.add_argument(
            "--local",
            action="store_true",
            help="run the operator as a local process instead (no image build)",
        ),
    ),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.cluster", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name, (function, help_text, declare) in COMMANDS.items():
        subparser = subparsers.add_parser(name, help=help_text)
        declare(subparser)
        subparser.set_defaults(function=function)
    args = parser.parse_args(argv)
    result: int = args.function(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
