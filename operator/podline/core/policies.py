"""What the operator's configuration allows and defaults: the inputs of the core that are not the spec.

The shell builds one ``Policy`` from its settings (environment/flags, see ``shell.settings``) and passes
it to compiling, validation and scheduling. Keeping it a frozen value keeps the core pure and testable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_RUNNER_IMAGE = "podline/podline:0.1.0"
DEFAULT_CLONE_IMAGE = "drone/git"
DEFAULT_SECRET_STORE = "podline-secrets"
DEFAULT_LOG_LIMIT = 64 * 1024 * 1024  # the entrypoint's own default (operator/entrypoint/logcopy.go)


@dataclass(frozen=True)
class Policy:
    runner_image: str = DEFAULT_RUNNER_IMAGE
    """Image holding the entrypoint binary at /podline-entrypoint (the operator's own image does): it copies
    the binary into each run pod, and stands in for a step whose image cannot be pulled (docs/in-pod.md)."""

    clone_image: str = DEFAULT_CLONE_IMAGE
    """Image of the implicit clone step (only when build metadata names a remote)."""

    secret_store: str = DEFAULT_SECRET_STORE
    """Secret that a bare ``from_secret: key`` reads its key from."""

    allow_privileged: bool = False
    """Whether steps may ask for ``privileged: true``."""

    allow_host_volumes: bool = False
    """Whether pipelines may mount ``host:`` volumes."""

    allowed_service_accounts: frozenset[str] = field(default_factory=frozenset)
    """ServiceAccounts a pipeline may name in ``service_account_name``; ``*`` allows any."""

    default_service_account: str | None = None
    """ServiceAccount of run pods when the pipeline names none (None: the namespace's default)."""

    automount_service_account_token: bool = False
    """Whether run pods get an API token mounted (off: a CI step rarely needs the API)."""

    run_timeout_seconds: int = 3600
    """Default run timeout; a Pipeline's ``podline.dev/timeout`` annotation overrides it."""

    step_timeout_seconds: int | None = None
    """Default per-step timeout; None: only the run timeout applies."""

    pull_timeout_seconds: int = 300
    """How long a started step may wait for its image (ErrImagePull/ImagePullBackOff) before it fails."""

    max_steps: int = 200
    """Steps plus services per pipeline: every one is a container of one pod."""

    log_limit_bytes: int = DEFAULT_LOG_LIMIT
    """Bytes of each step's output kept in its copy on the pod's volume (and so in the archive); the rest is
    counted and a note says where it was cut (PODLINE_LOG_LIMIT)."""

    max_env_bytes: int = 256 * 1024
    """Bound on the environment a pod gets, summed over containers (a pod must fit in etcd)."""

    def allows_service_account(self, name: str) -> bool:
        return "*" in self.allowed_service_accounts or name in self.allowed_service_accounts
