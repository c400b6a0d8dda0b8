"""What every ARC ClusterWorkflowTemplate shares: the parameter contract, credentials, retries, step shape.

The contract with the ArtifactWorkflow controller (SPEC §4.1, §4.2):

- Parameters (all strings): :data:`COMMON_PARAMETERS` first, then the artifact's ``spec`` flattened with the
  prefix ``spec`` (``{"tlsVerify": {"src": false}}`` → ``specTlsVerifySrc=false``), then the ArtifactType's
  parameters, which win over both (so an ArtifactType can force ``specScan: "true"`` for every artifact).
  Every template declares each parameter it reads in ``spec.arguments.parameters``; optional ones have a
  default there, so an Order only sets what it needs. Unknown extra parameters are ignored.
- Credentials: never parameters. The Workflow has the volumes ``src-secret-vol`` and ``dst-secret-vol`` (a
  ``kubernetes.io/dockerconfigjson`` Secret, or an emptyDir when the Endpoint has none); steps mount them
  read-only at :data:`SRC_AUTH_DIR` / :data:`DST_AUTH_DIR` and read ``.dockerconfigjson`` only when
  ``srcSecret`` / ``dstSecret`` is ``"true"``. The templates do not declare these volumes: Argo merges a
  Workflow's volumes into its template's by name without ``retainKeys``, so a template's emptyDir and the
  Workflow's Secret would end up in one volume with two sources.
- Pods: the templates set no pod metadata, so the Workflow's ``spec.podMetadata`` (the Kueue queue label) is
  what the pods get. Steps request CPU and memory only (the resources a Kueue ClusterQueue must cover).
- Evidence as ``outputs``: the copy steps declare the output parameters of :data:`OUTPUTS`, each read from
  a file under ``ARC_OUTPUT_DIR`` with a default of ``""`` (a step that writes none still succeeds); the
  ArtifactWorkflow controller copies them into ``status.provenance``. No ``resource`` templates: Kueue
  ignores them.
- Every step retries (``retryPolicy: Always``): a pod that Kueue preempts is deleted, not restarted, and
  Argo reports that as Error or as Failed depending on timing. There is no ``backoff.maxDuration``: it would
  count time spent queued in Kueue.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from hera.workflows import ClusterWorkflowTemplate, Container, Env, RetryStrategy, Steps
from hera.workflows import models as m

#: Where the source / destination Secret volumes are mounted in every step.
SRC_AUTH_DIR = "/var/run/arc/src"
DST_AUTH_DIR = "/var/run/arc/dst"
SRC_SECRET_VOLUME = "src-secret-vol"
DST_SECRET_VOLUME = "dst-secret-vol"

#: Label put on every template (and nothing else: pod metadata comes from the Workflow).
PART_OF_LABEL = {"app.kubernetes.io/part-of": "arc"}

_BOOL = ("true", "false")


@dataclass(frozen=True)
class Param:
    """One workflow parameter of a template: its name, what it means, its default (None: required)."""

    name: str
    description: str
    default: str | None = None
    enum: tuple[str, ...] | None = None

    @property
    def env_name(self) -> str:
        """The environment variable a step reads it from: ``srcRemoteURL`` → ``SRC_REMOTE_URL``."""
        return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", self.name).upper()

    @property
    def reference(self) -> str:
        return "{{workflow.parameters." + self.name + "}}"

    def to_hera(self) -> m.Parameter:
        # The generated model, not hera's Parameter wrapper: that one renders a missing value as "null".
        return m.Parameter(
            name=self.name,
            value=self.default,
            enum=list(self.enum) if self.enum else None,
            description=self.description,
        )


def flag(name: str, description: str, default: str = "false") -> Param:
    """A ``"true"``/``"false"`` parameter."""
    return Param(name, description, default, _BOOL)


#: Fixed parameters passed by the controller to every template, in this order (SPEC §4.1).
COMMON_PARAMETERS: tuple[Param, ...] = (
    Param("srcType", "Type of the source Endpoint (spec.type), e.g. oci, helm, http."),
    Param("srcRemoteURL", "remoteURL of the source Endpoint: host, host/path or URL."),
    Param("dstType", "Type of the destination Endpoint (spec.type)."),
    Param("dstRemoteURL", "remoteURL of the destination Endpoint: host, host/path or URL."),
    flag("srcSecret", 'Whether the source Endpoint has a Secret ("true": read /var/run/arc/src).'),
    flag("dstSecret", 'Whether the destination Endpoint has a Secret ("true": read /var/run/arc/dst).'),
)

#: TLS verification per side; a plain ``http://`` remoteURL never uses TLS, whatever these say.
TLS_PARAMETERS: tuple[Param, ...] = (
    flag("specTlsVerifySrc", "Verify the source's TLS certificate (spec tlsVerify.src).", "true"),
    flag("specTlsVerifyDst", "Verify the destination's TLS certificate (spec tlsVerify.dst).", "true"),
)

#: Where a step writes its output parameters' files (``ARC_OUTPUT_DIR``; Argo's wait container reads them).
OUTPUT_DIR = "/tmp/arc-outputs"

#: The evidence a copy step writes, one Argo output parameter each (all strings; lists one item a line).
OUTPUTS: tuple[tuple[str, str], ...] = (
    ("sourceRef", "The source reference that was resolved."),
    ("sourceDigest", "The manifest digest it resolved to (what was verified and copied)."),
    ("destinationRef", "The destination reference written."),
    ("destinationDigest", "The digest the destination serves after the copy."),
    ("platforms", "One line per platform of an index: os/arch[/variant] digest."),
    ("signatureKey", "Identity of the public key that verified the signature: name and sha256 of its PEM."),
    ("signedDigest", "The digest the verified signature covers."),
    ("referrers", "One line per copied referrer: kind (sig, att, sbom, referrer) digest reference."),
    ("tools", "One line per tool: name version."),
)

#: Copy cosign's attachment tags with the artifact (the tenant may ask; the type may force it).
COPY_REFERRERS = flag(
    "specCopyReferrers",
    "Copy the artifact's cosign attachments (sha256-<digest>.sig/.att/.sbom tags) with it, digests checked.",
)

#: The signature gate, the ArtifactType's (spec.verification; never derived from an Order's spec).
VERIFY_PARAMETERS: tuple[Param, ...] = (
    Param(
        "verifyCosignPublicKey",
        "PEM public key the source must be signed with (cosign verify --offline on the resolved digest);"
        " empty: no signature gate. The ArtifactType's (spec.verification); an Order cannot set it.",
        "",
    ),
    Param(
        "verifyCosignKeyIdentity",
        "Which type the key is from (ArtifactType/ns/name), recorded with the key's SHA-256 fingerprint.",
        "",
    ),
)

#: The signature gate's verdict (no signature, wrong key, digest mismatch; exit code 4) is final; anything
#: else (a deleted pod, a registry hiccup) is retried.
VERIFY_RETRY_EXPRESSION = (
    "lastRetry.status == 'Error' || (lastRetry.status == 'Failed' && lastRetry.exitCode != '4')"
)

#: Requests of an ordinary transfer step (Kueue admits pods by these).
TRANSFER_RESOURCES = {"cpu": "250m", "memory": "256Mi"}

#: How long one attempt of a step may run once its pod started (queueing in Kueue does not count).
STEP_DEADLINE_SECONDS = 6 * 3600


def retry_strategy(*, expression: str | None = None) -> RetryStrategy:
    """Retry every failure 3 times (4 attempts), 10 s, 20 s, 40 s apart (SPEC §4.3)."""
    return RetryStrategy(
        limit=3,
        retry_policy="Always",
        backoff=m.Backoff(duration="10s", factor=m.IntOrString(2)),
        expression=expression,
    )


@dataclass(frozen=True)
class StepSpec:
    """One step of a template's single sequence: a shell script in a tool image, maybe conditional."""

    name: str
    image: str
    script: str
    mounts: tuple[str, ...] = ("src", "dst")
    when: str | None = None
    resources: dict[str, str] | None = None
    retry_expression: str | None = None
    evidence: bool = False


def copy_step(name: str, image: str, script: str, *, when: str | None = None) -> StepSpec:
    """A step that copies an artifact to the destination and records its evidence: both Endpoints'
    credentials mounted, the signature gate's verdict final (`VERIFY_RETRY_EXPRESSION`)."""
    return StepSpec(
        name=name,
        image=image,
        script=script,
        when=when,
        retry_expression=VERIFY_RETRY_EXPRESSION,
        evidence=True,
    )


def when_true(param: Param) -> str:
    """An Argo ``when`` that holds when ``param`` is ``"true"`` (quoted: an empty value stays valid)."""
    return f"'{param.reference}' == 'true'"


def when_equals(param: Param, value: str) -> str:
    return f"'{param.reference}' == '{value}'"


def when_not_equals(param: Param, value: str) -> str:
    return f"'{param.reference}' != '{value}'"


_MOUNTS = {
    "src": (SRC_SECRET_VOLUME, SRC_AUTH_DIR, "ARC_SRC_AUTH_DIR"),
    "dst": (DST_SECRET_VOLUME, DST_AUTH_DIR, "ARC_DST_AUTH_DIR"),
}


def _container(step: StepSpec, params: Sequence[Param]) -> Container:
    env = [Env(name=p.env_name, value=p.reference) for p in params]
    env += [Env(name=_MOUNTS[side][2], value=_MOUNTS[side][1]) for side in ("src", "dst")]
    outputs: list[m.Parameter] | None = None
    if step.evidence:
        env.append(Env(name="ARC_OUTPUT_DIR", value=OUTPUT_DIR))
        outputs = [
            m.Parameter(
                name=name,
                description=description,
                value_from=m.ValueFrom(path=f"{OUTPUT_DIR}/{name}", default=""),
            )
            for name, description in OUTPUTS
        ]
    return Container(
        name=step.name,
        image=step.image,
        command=["/bin/sh", "-c", step.script],
        env=env,
        volume_mounts=[
            m.VolumeMount(name=_MOUNTS[side][0], mount_path=_MOUNTS[side][1], read_only=True)
            for side in step.mounts
        ],
        resources=m.ResourceRequirements(
            requests={k: m.Quantity(v) for k, v in (step.resources or TRANSFER_RESOURCES).items()}
        ),
        retry_strategy=retry_strategy(expression=step.retry_expression),
        active_deadline_seconds=STEP_DEADLINE_SECONDS,
        outputs=outputs,
    )


def build_template(
    *, name: str, title: str, description: str, params: Sequence[Param], steps: Sequence[StepSpec]
) -> ClusterWorkflowTemplate:
    """A ClusterWorkflowTemplate ``name`` whose entrypoint ``main`` runs ``steps`` one after another.

    Every step gets every parameter as an environment variable (:attr:`Param.env_name`) and the credential
    directories as ``ARC_SRC_AUTH_DIR`` / ``ARC_DST_AUTH_DIR``.
    """
    names = [p.name for p in params]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate parameter names in {name}: {names}")
    with ClusterWorkflowTemplate(
        name=name,
        labels=dict(PART_OF_LABEL),
        annotations={
            "workflows.argoproj.io/title": title,
            "workflows.argoproj.io/description": description,
        },
        entrypoint="main",
        arguments=[p.to_hera() for p in params],
    ) as template:
        containers = [(step, _container(step, params)) for step in steps]
        with Steps(name="main"):
            for step, container in containers:
                container(name=step.name, when=step.when)
    return template
