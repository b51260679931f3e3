"""What the operator's configuration allows and defaults: the inputs of the core that are not the spec.

The shell builds one ``Policy`` from its settings (environment/flags, see ``shell.settings``) and passes
it to compiling, validation and scheduling. Keeping it a frozen value keeps the core pure and testable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from podline.core import errors, images, models

DEFAULT_RUNNER_IMAGE = "podline/podline:0.1.0"
DEFAULT_CLONE_IMAGE = "drone/git"
DEFAULT_SECRET_STORE = "podline-secrets"
# drone-runner-docker engine/compiler/compiler.go ``Privileged`` (drone-runner-kube's lacks plugins/gar):
# plugins that run Docker in Docker, privileged by default.
DEFAULT_PRIVILEGED_IMAGES = (
    "plugins/docker",
    "plugins/acr",
    "plugins/ecr",
    "plugins/gcr",
    "plugins/heroku",
    "plugins/gar",
)
# drone-runner-docker/-kube engine/compiler/util.go ``restrictedVars``: setting one of these turns the
# privileged default off, so a step cannot point a privileged Docker at something else.
RESTRICTED_VARIABLES = ("XDG_RUNTIME_DIR", "DOCKER_OPTS", "DOCKER_HOST", "PATH", "HOME")
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

    privileged_images: tuple[str, ...] = DEFAULT_PRIVILEGED_IMAGES
    """Images whose plugin steps run privileged without asking, as Drone's ``DRONE_RUNNER_PRIVILEGED_IMAGES``
    (the tag does not matter). Only where ``allow_privileged``; otherwise such a step is refused."""

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


def runs_privileged(policy: Policy, step: models.Step) -> bool:
    """Whether Drone runs ``step`` privileged without its asking (drone-runner-docker/-kube
    engine/compiler/compiler.go ``isPrivileged``): a plugin step (no ``commands``, ``command``,
    ``entrypoint`` or ``volumes``, no restricted variable) whose image, tag aside, is a privileged image."""
    if step.commands or step.command or step.entrypoint or step.volumes:
        return False
    if any(name in step.environment for name in RESTRICTED_VARIABLES):
        return False
    try:
        name = images.parse(step.image).name
        return any(images.parse(image).name == name for image in policy.privileged_images)
    except errors.InvalidImageReference:
        return False  # validation reports the image
