"""arc.opendefense.cloud/v1alpha1: Order, ArtifactWorkflow, Endpoint, ArtifactType, ClusterArtifactType.

Exactly the fields of SPEC §2. Every field has a description: it is what `kubectl explain` prints (the
OpenAPI documents are generated from these models by `api.openapi`).

Fields a user must set but that Go would serialize without `omitempty` (`spec.type`, `spec.remoteURL`,
`workflowTemplateRef.name`, ...) default to `""` here instead of being pydantic-required: pydantic checks
shape and types only, and `validation.py` reports a missing value together with every other problem.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final, Literal

from pydantic import Field

from api.meta import Condition, K8sModel, ListMeta, LocalObjectReference, ObjectMeta, RawJSON, x_kubernetes

__all__ = [
    "API_VERSION",
    "GROUP",
    "VERSION",
    "ArcList",
    "ArcObject",
    "ArtifactType",
    "ArtifactTypeList",
    "ArtifactTypeRules",
    "ArtifactTypeSpec",
    "ArtifactTypeTTL",
    "ArtifactVerification",
    "ArtifactWorkflow",
    "ArtifactWorkflowList",
    "ArtifactWorkflowProvenance",
    "ArtifactWorkflowSpec",
    "ArtifactWorkflowStatus",
    "ClusterArtifactType",
    "ClusterArtifactTypeList",
    "ConcurrencyPolicy",
    "Condition",
    "CosignVerification",
    "Cron",
    "Endpoint",
    "EndpointList",
    "EndpointSpec",
    "EndpointStatus",
    "LocalObjectReference",
    "ObjectMeta",
    "Order",
    "OrderArtifact",
    "OrderArtifactWorkflowStatus",
    "OrderDefaults",
    "OrderList",
    "OrderProgress",
    "OrderScheduleStatus",
    "OrderSpec",
    "OrderStatus",
    "Parameter",
    "PlatformDigest",
    "ProvenanceReference",
    "Referrer",
    "SignatureVerification",
    "StartFailureReason",
    "ToolVersion",
    "WorkflowTemplateRef",
]

GROUP: Final = "arc.opendefense.cloud"
VERSION: Final = "v1alpha1"
API_VERSION: Final = "arc.opendefense.cloud/v1alpha1"

# Endpoint usage values (sorted, as kube lists supported values).
USAGE_ALL: Final = "All"
USAGE_PULL_ONLY: Final = "PullOnly"
USAGE_PUSH_ONLY: Final = "PushOnly"
ENDPOINT_USAGES: Final = (USAGE_ALL, USAGE_PULL_ONLY, USAGE_PUSH_ONLY)


class ConcurrencyPolicy(StrEnum):
    """What a scheduled run does when the previous run of the same artifact is still active (CronJob's)."""

    ALLOW = "Allow"
    FORBID = "Forbid"
    REPLACE = "Replace"


ORDER_PHASES: Final = ("Pending", "Running", "Succeeded", "Failed")
ARTIFACT_WORKFLOW_PHASES: Final = ("Pending", "Running", "Succeeded", "Failed", "Error")

_API_VERSION_DOC: Final = (
    "APIVersion defines the versioned schema of this representation of an object. Servers should convert "
    "recognized schemas to the latest internal value, and may reject unrecognized values. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources"
)
_KIND_DOC: Final = (
    "Kind is a string value representing the REST resource this object represents. Servers may infer this "
    "from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"
)
_METADATA_DOC: Final = (
    "Standard object's metadata. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)
_LIST_METADATA_DOC: Final = (
    "Standard list metadata. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"
)
_OBSERVED_GENERATION_DOC: Final = "The metadata.generation of the object the controller last acted on."
_CONDITIONS_DOC: Final = "The current state of the object as metav1.Condition entries, one per type."


def _conditions_field() -> list[Condition] | None:
    return Field(
        default=None,
        description=_CONDITIONS_DOC,
        json_schema_extra=x_kubernetes(
            list_type="map", list_map_keys=("type",), patch_strategy="merge", patch_merge_key="type"
        ),
    )


# --- shared ---------------------------------------------------------------------------------------------


class Parameter(K8sModel):
    """A named string argument passed to the Argo workflow."""

    name: str = Field(
        default="",
        description="Name of the workflow parameter; non-empty and unique within the list.",
        json_schema_extra=x_kubernetes(required=True),
    )
    value: str = Field(
        default="",
        description="Value of the workflow parameter (always a string).",
        json_schema_extra=x_kubernetes(required=True),
    )


class WorkflowTemplateRef(K8sModel):
    """The Argo WorkflowTemplate (or ClusterWorkflowTemplate) that performs the transfer."""

    name: str = Field(
        default="",
        description="Name of the Argo WorkflowTemplate or ClusterWorkflowTemplate.",
        json_schema_extra=x_kubernetes(required=True),
    )
    cluster_scope: bool | None = Field(
        default=None,
        description=(
            "If true, name refers to a ClusterWorkflowTemplate; otherwise to a WorkflowTemplate in the "
            "Order's namespace. A ClusterArtifactType must set it to true."
        ),
    )


# --- Endpoint -------------------------------------------------------------------------------------------


class EndpointSpec(K8sModel):
    """Where artifacts are pulled from or pushed to."""

    type: str = Field(
        default="",
        description=(
            "Type of the endpoint, e.g. oci, helm, s3 or http; matched against the srcTypes/dstTypes rules "
            "of artifact types."
        ),
        json_schema_extra=x_kubernetes(required=True),
    )
    remote_url: str = Field(
        default="",
        alias="remoteURL",
        description="Host, host/path or URL of the remote; passed verbatim to the workflows.",
        json_schema_extra=x_kubernetes(required=True),
    )
    secret_ref: LocalObjectReference | None = Field(
        default=None,
        description="A Secret in the Endpoint's namespace holding the credentials for the remote.",
    )
    usage: str | None = Field(
        default=None,
        description=(
            "Whether the endpoint may be used as a source (PullOnly), as a destination (PushOnly) or both "
            "(All). Defaults to All."
        ),
        json_schema_extra=x_kubernetes(enum=ENDPOINT_USAGES),
    )


class EndpointStatus(K8sModel):
    """Observed state of an Endpoint."""

    observed_generation: int | None = Field(default=None, description=_OBSERVED_GENERATION_DOC)
    conditions: list[Condition] | None = _conditions_field()
    last_probe_time: str | None = Field(
        default=None,
        description="When the Endpoint's remote was last probed by the controller manager (RFC 3339).",
        json_schema_extra=x_kubernetes(format="date-time"),
    )


class Endpoint(K8sModel):
    """Endpoint is a remote registry, repository or server that artifacts are copied from or to."""

    api_version: Literal["arc.opendefense.cloud/v1alpha1"] = Field(
        default=API_VERSION, description=_API_VERSION_DOC
    )
    kind: Literal["Endpoint"] = Field(default="Endpoint", description=_KIND_DOC)
    metadata: ObjectMeta = Field(default_factory=ObjectMeta, description=_METADATA_DOC)
    spec: EndpointSpec = Field(default_factory=EndpointSpec, description="Desired state of the Endpoint.")
    status: EndpointStatus | None = Field(default=None, description="Observed state of the Endpoint.")


class EndpointList(K8sModel):
    """EndpointList is a list of Endpoints."""

    api_version: Literal["arc.opendefense.cloud/v1alpha1"] = Field(
        default=API_VERSION, description=_API_VERSION_DOC
    )
    kind: Literal["EndpointList"] = Field(default="EndpointList", description=_KIND_DOC)
    metadata: ListMeta = Field(default_factory=ListMeta, description=_LIST_METADATA_DOC)
    items: list[Endpoint] = Field(
        default_factory=list, description="List of Endpoints.", json_schema_extra=x_kubernetes(required=True)
    )


# --- ArtifactType / ClusterArtifactType -----------------------------------------------------------------


class ArtifactTypeRules(K8sModel):
    """Which Endpoint types an artifact of this type may be copied from and to."""

    src_types: list[str] | None = Field(
        default=None,
        description="Endpoint types allowed as source; empty means any.",
        json_schema_extra=x_kubernetes(list_type="atomic"),
    )
    dst_types: list[str] | None = Field(
        default=None,
        description="Endpoint types allowed as destination; empty means any.",
        json_schema_extra=x_kubernetes(list_type="atomic"),
    )


class ArtifactTypeTTL(K8sModel):
    """How long finished ArtifactWorkflows are kept (Go durations such as 1h or 30m)."""

    after_succeeded: str | None = Field(
        default=None, description="Time to keep a Succeeded ArtifactWorkflow, e.g. 1h."
    )
    after_failed: str | None = Field(
        default=None, description="Time to keep a Failed or Error ArtifactWorkflow, e.g. 24h."
    )


class CosignVerification(K8sModel):
    """Verify cosign key-pair signatures offline (no transparency log, no keyless lookups)."""

    public_key: str = Field(
        default="",
        description=(
            "The PEM public key (-----BEGIN PUBLIC KEY-----, as cosign generate-key-pair writes cosign.pub)"
            " the source artifact must be signed with. It is verified with cosign verify --key --offline"
            " --insecure-ignore-tlog on the resolved digest, before anything is pushed. Inline, like an"
            " APIService's caBundle: a public key is not secret, and a ClusterArtifactType's policy must not"
            " depend on objects in tenants' namespaces."
        ),
        json_schema_extra=x_kubernetes(required=True),
    )


class ArtifactVerification(K8sModel):
    """What an artifact of this type must prove before it is copied."""

    cosign: CosignVerification | None = Field(
        default=None, description="Require a cosign signature by the given public key."
    )


class ArtifactTypeSpec(K8sModel):
    """How artifacts of one type are transferred."""

    rules: ArtifactTypeRules | None = Field(
        default=None, description="Endpoint types allowed as source and destination."
    )
    parameters: list[Parameter] | None = Field(
        default=None,
        description="Default workflow arguments; names are non-empty and unique. They win over derived ones.",
        json_schema_extra=x_kubernetes(
            list_type="map", list_map_keys=("name",), patch_strategy="merge", patch_merge_key="name"
        ),
    )
    workflow_template_ref: WorkflowTemplateRef | None = Field(
        default=None,
        description="The Argo WorkflowTemplate or ClusterWorkflowTemplate that performs the transfer.",
        json_schema_extra=x_kubernetes(required=True),
    )
    queue_name: str | None = Field(
        default=None, description="Kueue LocalQueue for the workflow pods; an Order's queueName overrides it."
    )
    service_account_name: str | None = Field(
        default=None, description="Service account the workflow runs as."
    )
    ttl: ArtifactTypeTTL | None = Field(
        default=None, description="How long finished ArtifactWorkflows of this type are kept."
    )
    verification: ArtifactVerification | None = Field(
        default=None,
        description=(
            "Signature policy: an artifact that does not verify fails before anything is pushed. Its"
            " parameters (verifyCosignPublicKey, verifyCosignKeyIdentity) are the type's; an Order cannot"
            " set or override them."
        ),
    )


class ArtifactType(K8sModel):
    """ArtifactType says how artifacts of one type are transferred in its namespace."""

    api_version: Literal["arc.opendefense.cloud/v1alpha1"] = Field(
        default=API_VERSION, description=_API_VERSION_DOC
    )
    kind: Literal["ArtifactType"] = Field(default="ArtifactType", description=_KIND_DOC)
    metadata: ObjectMeta = Field(default_factory=ObjectMeta, description=_METADATA_DOC)
    spec: ArtifactTypeSpec = Field(default_factory=ArtifactTypeSpec, description="Desired state of the type.")


class ArtifactTypeList(K8sModel):
    """ArtifactTypeList is a list of ArtifactTypes."""

    api_version: Literal["arc.opendefense.cloud/v1alpha1"] = Field(
        default=API_VERSION, description=_API_VERSION_DOC
    )
    kind: Literal["ArtifactTypeList"] = Field(default="ArtifactTypeList", description=_KIND_DOC)
    metadata: ListMeta = Field(default_factory=ListMeta, description=_LIST_METADATA_DOC)
    items: list[ArtifactType] = Field(
        default_factory=list,
        description="List of ArtifactTypes.",
        json_schema_extra=x_kubernetes(required=True),
    )


class ClusterArtifactType(K8sModel):
    """ClusterArtifactType says how artifacts of one type are transferred in every namespace that has no
    ArtifactType of that name. Its workflowTemplateRef must be cluster-scoped."""

    api_version: Literal["arc.opendefense.cloud/v1alpha1"] = Field(
        default=API_VERSION, description=_API_VERSION_DOC
    )
    kind: Literal["ClusterArtifactType"] = Field(default="ClusterArtifactType", description=_KIND_DOC)
    metadata: ObjectMeta = Field(default_factory=ObjectMeta, description=_METADATA_DOC)
    spec: ArtifactTypeSpec = Field(default_factory=ArtifactTypeSpec, description="Desired state of the type.")


class ClusterArtifactTypeList(K8sModel):
    """ClusterArtifactTypeList is a list of ClusterArtifactTypes."""

    api_version: Literal["arc.opendefense.cloud/v1alpha1"] = Field(
        default=API_VERSION, description=_API_VERSION_DOC
    )
    kind: Literal["ClusterArtifactTypeList"] = Field(default="ClusterArtifactTypeList", description=_KIND_DOC)
    metadata: ListMeta = Field(default_factory=ListMeta, description=_LIST_METADATA_DOC)
    items: list[ClusterArtifactType] = Field(
        default_factory=list,
        description="List of ClusterArtifactTypes.",
        json_schema_extra=x_kubernetes(required=True),
    )


# --- Order ----------------------------------------------------------------------------------------------


class Cron(K8sModel):
    """When an artifact re-runs by itself: a cron schedule, as the Go ARC's `Cron` and CronJob have it.

    Each scheduled time re-runs the artifact as the force-at annotation does (a new ArtifactWorkflow; the
    previous one is kept as history within the limits below). ARC's controller manager drives the schedule
    itself: the times are derived from status (lastScheduleTime), so a restart or a change of leader neither
    misses nor doubles one.
    """

    schedules: list[str] | None = Field(
        default=None,
        description=(
            "Schedules in cron format, at least one: five fields (minute hour day-of-month month day-of-week,"
            " with * , - / ? and month/day names), a descriptor (@yearly, @annually, @monthly, @weekly,"
            " @daily, @midnight, @hourly) or @every <duration> (e.g. @every 1h30m), as Kubernetes CronJob"
            " (robfig/cron) accepts them. The artifact runs at every time of any of them."
        ),
        json_schema_extra=x_kubernetes(required=True, list_type="atomic"),
    )
    timezone: str | None = Field(
        default=None,
        description=(
            "IANA time zone the schedules are read in, e.g. Europe/Berlin; default UTC. (CronJob calls it"
            " timeZone; the Go ARC and Argo CronWorkflow call it timezone.)"
        ),
    )
    concurrency_policy: str | None = Field(
        default=None,
        description=(
            "What a scheduled time does while the artifact's previous run is still active: Allow (default)"
            " starts the new run beside it, Forbid skips the time, Replace deletes the active run and starts"
            " the new one."
        ),
        json_schema_extra=x_kubernetes(enum=tuple(ConcurrencyPolicy)),
    )
    starting_deadline_seconds: int | None = Field(
        default=None,
        description=(
            "A scheduled time that could not start within this many seconds (the controller was down, or"
            " Forbid held it back) is not run late: it is reported (Warning event MissedSchedule, condition"
            " Scheduled=False) and skipped. Unset: no deadline."
        ),
    )
    suspend: bool | None = Field(
        default=None,
        description="True stops new scheduled runs (running ones go on); default false.",
    )
    successful_jobs_history_limit: int | None = Field(
        default=None,
        description=(
            "How many finished, Succeeded ArtifactWorkflows of the artifact to keep (the newest); default 3."
            " The Order's status keeps the latest result even when its ArtifactWorkflow is gone."
        ),
    )
    failed_jobs_history_limit: int | None = Field(
        default=None,
        description=(
            "How many Failed or Error ArtifactWorkflows of the artifact to keep (the newest); default 1."
        ),
    )


class OrderDefaults(K8sModel):
    """Endpoints used by artifacts that do not name their own."""

    src_ref: LocalObjectReference | None = Field(
        default=None, description="Default source Endpoint, in the Order's namespace."
    )
    dst_ref: LocalObjectReference | None = Field(
        default=None, description="Default destination Endpoint, in the Order's namespace."
    )
    cron: Cron | None = Field(
        default=None,
        description="Schedule of every artifact that has no cron of its own; unset: the artifacts run once.",
    )


class OrderArtifact(K8sModel):
    """One artifact to transfer."""

    type: str = Field(
        default="",
        description=(
            "Artifact type: the ArtifactType of this name in the Order's namespace, else the "
            "ClusterArtifactType of this name."
        ),
        json_schema_extra=x_kubernetes(required=True),
    )
    src_ref: LocalObjectReference | None = Field(
        default=None, description="Source Endpoint; defaults to spec.defaults.srcRef."
    )
    dst_ref: LocalObjectReference | None = Field(
        default=None, description="Destination Endpoint; defaults to spec.defaults.dstRef."
    )
    spec: RawJSON = Field(
        default=None,
        description=(
            "Free-form, type-specific settings (a JSON object, default {}), passed to the workflow as "
            "flattened spec* parameters. Stored as sent, nulls included."
        ),
        json_schema_extra=x_kubernetes(preserve_unknown_fields=True),
    )
    cron: Cron | None = Field(
        default=None, description="Schedule of this artifact; defaults to spec.defaults.cron."
    )


class OrderSpec(K8sModel):
    """What to transfer, from where to where."""

    defaults: OrderDefaults | None = Field(
        default=None, description="Default source and destination Endpoints for the artifacts."
    )
    artifacts: list[OrderArtifact] | None = Field(
        default=None,
        description="The artifacts to transfer; at least one. Each maps to one ArtifactWorkflow.",
        json_schema_extra=x_kubernetes(required=True, list_type="atomic"),
    )
    queue_name: str | None = Field(
        default=None,
        description="Kueue LocalQueue for the workflow pods; overrides the ArtifactType's queue.",
    )


class StartFailureReason(StrEnum):
    """Why an artifact of an Order could not start (SPEC §4.1), in its status entry's `reason`.

    Such an artifact counts as Failed, and — unlike one whose ArtifactWorkflow failed — it starts by itself
    once the cause is fixed. The controller decides that from this reason, never from the message's words.
    """

    ENDPOINT_NOT_FOUND = "EndpointNotFound"
    SECRET_NOT_FOUND = "SecretNotFound"
    ARTIFACT_TYPE_NOT_FOUND = "ArtifactTypeNotFound"
    ENDPOINT_USAGE_NOT_ALLOWED = "EndpointUsageNotAllowed"
    ENDPOINT_TYPE_NOT_ALLOWED = "EndpointTypeNotAllowed"


class OrderArtifactWorkflowStatus(K8sModel):
    """State of one artifact of an Order (keyed by its artifact hash in status.artifactWorkflows)."""

    artifact_index: int = Field(
        default=0,
        description="Current index of the artifact in spec.artifacts.",
        json_schema_extra=x_kubernetes(required=True),
    )
    name: str = Field(
        default="",
        description="Name of the ArtifactWorkflow for the artifact.",
        json_schema_extra=x_kubernetes(required=True),
    )
    phase: str = Field(
        default="",
        description="Phase of the artifact: Pending, Running, Succeeded, Failed or Error.",
        json_schema_extra=x_kubernetes(required=True),
    )
    message: str | None = Field(default=None, description="Human-readable details, e.g. why it failed.")
    reason: StartFailureReason | None = Field(
        default=None,
        description=(
            "Why the artifact could not start (missing Endpoint, Secret or artifact type, or an Endpoint's"
            " usage or type not allowed); set only then. Such an artifact starts by itself once the cause is"
            " fixed."
        ),
        json_schema_extra=x_kubernetes(enum=tuple(StartFailureReason)),
    )
    digest: str | None = Field(
        default=None,
        description="Digest of the artifact at the destination (from the ArtifactWorkflow's provenance).",
    )
    verified_by: str | None = Field(
        default=None,
        description="Identity of the key whose signature was verified before the copy; unset when none was.",
    )
    workflow_url: str | None = Field(
        default=None,
        alias="workflowURL",
        description=(
            "The artifact's Argo Workflow in the Argo UI (<base URL>/workflows/<namespace>/<name>); set when"
            " the controller manager is given the UI's base URL (--argo-ui-base-url)."
        ),
    )


class OrderProgress(K8sModel):
    """Artifact counts by phase."""

    total: int = Field(default=0, description="Number of artifacts.")
    pending: int = Field(default=0, description="Number of Pending artifacts.")
    running: int = Field(default=0, description="Number of Running artifacts.")
    succeeded: int = Field(default=0, description="Number of Succeeded artifacts.")
    failed: int = Field(default=0, description="Number of Failed or Error artifacts.")


class OrderScheduleStatus(K8sModel):
    """Schedule state of one scheduled artifact (keyed in status.schedules by its schedule key)."""

    artifact_index: int = Field(
        default=0,
        description="Current index of the artifact in spec.artifacts.",
        json_schema_extra=x_kubernetes(required=True),
    )
    last_schedule_time: str | None = Field(
        default=None,
        description="The scheduled time of the artifact's latest scheduled run (RFC 3339).",
        json_schema_extra=x_kubernetes(format="date-time"),
    )
    last_successful_time: str | None = Field(
        default=None,
        description="When the artifact's latest successful scheduled run finished (RFC 3339).",
        json_schema_extra=x_kubernetes(format="date-time"),
    )
    last_missed_time: str | None = Field(
        default=None,
        description="The latest scheduled time that was skipped because it missed its starting deadline.",
        json_schema_extra=x_kubernetes(format="date-time"),
    )


class OrderStatus(K8sModel):
    """Observed state of an Order."""

    observed_generation: int | None = Field(default=None, description=_OBSERVED_GENERATION_DOC)
    phase: str | None = Field(
        default=None,
        description="Pending, Running, Succeeded or Failed.",
        json_schema_extra=x_kubernetes(enum=ORDER_PHASES),
    )
    message: str | None = Field(default=None, description="Human-readable summary of the Order's state.")
    conditions: list[Condition] | None = _conditions_field()
    last_force_at: str | None = Field(
        default=None,
        description="The arc.opendefense.cloud/force-at time last handled (RFC 3339).",
        json_schema_extra=x_kubernetes(format="date-time"),
    )
    last_retry_at: str | None = Field(
        default=None,
        description="The arc.opendefense.cloud/retry-failed-at time last handled (RFC 3339).",
        json_schema_extra=x_kubernetes(format="date-time"),
    )
    artifact_workflows: dict[str, OrderArtifactWorkflowStatus] | None = Field(
        default=None,
        description="State of every artifact, keyed by the 16-hex artifact hash.",
    )
    progress: OrderProgress | None = Field(default=None, description="Artifact counts by phase.")
    last_schedule_time: str | None = Field(
        default=None,
        description=(
            "The latest scheduled time at which any scheduled artifact of the Order started (RFC 3339)."
        ),
        json_schema_extra=x_kubernetes(format="date-time"),
    )
    last_successful_time: str | None = Field(
        default=None,
        description="When the latest successful scheduled run of any artifact finished (RFC 3339).",
        json_schema_extra=x_kubernetes(format="date-time"),
    )
    schedules: dict[str, OrderScheduleStatus] | None = Field(
        default=None,
        description=(
            "Schedule state of every scheduled artifact, keyed by its 16-hex schedule key (a hash of its"
            " type, spec and Endpoint names: stable when the artifacts are re-ordered or an Endpoint is"
            " edited)."
        ),
    )


class Order(K8sModel):
    """Order asks ARC to copy a set of artifacts between Endpoints."""

    api_version: Literal["arc.opendefense.cloud/v1alpha1"] = Field(
        default=API_VERSION, description=_API_VERSION_DOC
    )
    kind: Literal["Order"] = Field(default="Order", description=_KIND_DOC)
    metadata: ObjectMeta = Field(default_factory=ObjectMeta, description=_METADATA_DOC)
    spec: OrderSpec = Field(default_factory=OrderSpec, description="Desired state of the Order.")
    status: OrderStatus | None = Field(default=None, description="Observed state of the Order.")


class OrderList(K8sModel):
    """OrderList is a list of Orders."""

    api_version: Literal["arc.opendefense.cloud/v1alpha1"] = Field(
        default=API_VERSION, description=_API_VERSION_DOC
    )
    kind: Literal["OrderList"] = Field(default="OrderList", description=_KIND_DOC)
    metadata: ListMeta = Field(default_factory=ListMeta, description=_LIST_METADATA_DOC)
    items: list[Order] = Field(
        default_factory=list, description="List of Orders.", json_schema_extra=x_kubernetes(required=True)
    )


# --- ArtifactWorkflow -----------------------------------------------------------------------------------


class ArtifactWorkflowSpec(K8sModel):
    """The resolved transfer of one artifact; immutable once created."""

    type: str = Field(
        default="", description="Name of the artifact type.", json_schema_extra=x_kubernetes(required=True)
    )
    workflow_template_ref: WorkflowTemplateRef | None = Field(
        default=None, description="The resolved Argo WorkflowTemplate or ClusterWorkflowTemplate."
    )
    parameters: list[Parameter] | None = Field(
        default=None,
        description="Workflow arguments; names are unique.",
        json_schema_extra=x_kubernetes(
            list_type="map", list_map_keys=("name",), patch_strategy="merge", patch_merge_key="name"
        ),
    )
    src_secret_ref: LocalObjectReference | None = Field(
        default=None, description="Secret with source credentials; an empty name means none."
    )
    dst_secret_ref: LocalObjectReference | None = Field(
        default=None, description="Secret with destination credentials; an empty name means none."
    )
    queue_name: str | None = Field(default=None, description="Kueue LocalQueue for the workflow pods.")
    service_account_name: str | None = Field(
        default=None, description="Service account the workflow runs as."
    )


class ProvenanceReference(K8sModel):
    """An artifact at one side of a transfer: where it is and what exactly it is."""

    reference: str | None = Field(
        default=None, description="The reference the workflow resolved: registry/repository:tag or @digest."
    )
    digest: str | None = Field(default=None, description="Content digest (sha256:...) of the manifest.")


class PlatformDigest(K8sModel):
    """The manifest of one platform of a multi-architecture image."""

    platform: str = Field(
        default="",
        description="os/architecture[/variant], e.g. linux/arm64.",
        json_schema_extra=x_kubernetes(required=True),
    )
    digest: str = Field(
        default="", description="Digest of its manifest.", json_schema_extra=x_kubernetes(required=True)
    )


class SignatureVerification(K8sModel):
    """The result of the signature gate."""

    verified: bool = Field(
        default=False,
        description="Whether the signature was verified (a failed verification fails the workflow).",
        json_schema_extra=x_kubernetes(required=True),
    )
    key: str | None = Field(
        default=None,
        description="Identity of the public key: its source and the SHA-256 of its PEM text.",
    )
    signed_digest: str | None = Field(
        default=None, description="The digest the verified signature covers (the one that was copied)."
    )


class Referrer(K8sModel):
    """A signature, attestation, SBOM or OCI 1.1 referrer copied along with the artifact."""

    kind: str = Field(
        default="",
        description="sig, att or sbom (cosign tags) or referrer (OCI 1.1 referrers API).",
        json_schema_extra=x_kubernetes(required=True),
    )
    reference: str | None = Field(default=None, description="Where it was copied to.")
    digest: str | None = Field(default=None, description="Its manifest digest (the same on both sides).")


class ToolVersion(K8sModel):
    """A program that did the work, and its version."""

    name: str = Field(default="", description="Program name.", json_schema_extra=x_kubernetes(required=True))
    version: str = Field(
        default="", description="Its version as it reports it.", json_schema_extra=x_kubernetes(required=True)
    )


class ArtifactWorkflowProvenance(K8sModel):
    """The evidence of what crossed: written by the workflow's steps as Argo output parameters."""

    source: ProvenanceReference | None = Field(
        default=None, description="The source reference and the digest resolved before the copy."
    )
    destination: ProvenanceReference | None = Field(
        default=None,
        description="The destination reference and digest (equal to the source digest for OCI copies).",
    )
    platforms: list[PlatformDigest] | None = Field(
        default=None,
        description="Per-platform manifest digests of a multi-architecture image.",
        json_schema_extra=x_kubernetes(list_type="atomic"),
    )
    signature: SignatureVerification | None = Field(
        default=None, description="The signature verification result; unset when the type requires none."
    )
    referrers: list[Referrer] | None = Field(
        default=None,
        description="Signatures, attestations, SBOMs and referrers copied with the artifact.",
        json_schema_extra=x_kubernetes(list_type="atomic"),
    )
    tools: list[ToolVersion] | None = Field(
        default=None,
        description="The programs that did the work and their versions.",
        json_schema_extra=x_kubernetes(list_type="atomic"),
    )


class ArtifactWorkflowStatus(K8sModel):
    """Observed state of an ArtifactWorkflow, mirrored from its Argo Workflow."""

    phase: str | None = Field(
        default=None,
        description="Pending, Running, Succeeded, Failed or Error.",
        json_schema_extra=x_kubernetes(enum=ARTIFACT_WORKFLOW_PHASES),
    )
    message: str | None = Field(default=None, description="Human-readable details, e.g. the failed step.")
    workflow_name: str | None = Field(default=None, description="Name of the Argo Workflow.")
    started_at: str | None = Field(
        default=None,
        description="When the workflow started (RFC 3339).",
        json_schema_extra=x_kubernetes(format="date-time"),
    )
    finished_at: str | None = Field(
        default=None,
        description="When the workflow finished (RFC 3339).",
        json_schema_extra=x_kubernetes(format="date-time"),
    )
    observed_generation: int | None = Field(default=None, description=_OBSERVED_GENERATION_DOC)
    conditions: list[Condition] | None = _conditions_field()
    provenance: ArtifactWorkflowProvenance | None = Field(
        default=None,
        description="What was transferred, provably: digests, signature verification, referrers, tools.",
    )


class ArtifactWorkflow(K8sModel):
    """ArtifactWorkflow is one artifact transfer of an Order, run as an Argo Workflow."""

    api_version: Literal["arc.opendefense.cloud/v1alpha1"] = Field(
        default=API_VERSION, description=_API_VERSION_DOC
    )
    kind: Literal["ArtifactWorkflow"] = Field(default="ArtifactWorkflow", description=_KIND_DOC)
    metadata: ObjectMeta = Field(default_factory=ObjectMeta, description=_METADATA_DOC)
    spec: ArtifactWorkflowSpec = Field(
        default_factory=ArtifactWorkflowSpec, description="Desired state of the ArtifactWorkflow; immutable."
    )
    status: ArtifactWorkflowStatus | None = Field(
        default=None, description="Observed state of the ArtifactWorkflow."
    )


class ArtifactWorkflowList(K8sModel):
    """ArtifactWorkflowList is a list of ArtifactWorkflows."""

    api_version: Literal["arc.opendefense.cloud/v1alpha1"] = Field(
        default=API_VERSION, description=_API_VERSION_DOC
    )
    kind: Literal["ArtifactWorkflowList"] = Field(default="ArtifactWorkflowList", description=_KIND_DOC)
    metadata: ListMeta = Field(default_factory=ListMeta, description=_LIST_METADATA_DOC)
    items: list[ArtifactWorkflow] = Field(
        default_factory=list,
        description="List of ArtifactWorkflows.",
        json_schema_extra=x_kubernetes(required=True),
    )


ArcObject = Order | ArtifactWorkflow | Endpoint | ArtifactType | ClusterArtifactType
ArcList = OrderList | ArtifactWorkflowList | EndpointList | ArtifactTypeList | ClusterArtifactTypeList
