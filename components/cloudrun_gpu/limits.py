"""Cloud Run GPU limits as data, each with its source.

Sources disagree on several of these (``cloudrun-gpu-facts.md`` §9), so every limit lives
here exactly once, with the value we chose and why; code and tests import these names and
never repeat the literals. Where a conflict exists the *conservative* reading is the default
and the alternative is recorded in ``conflict`` so it can be revisited in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field

GIB = 1024**3
MIB = 1024**2


@dataclass(frozen=True)
class Sourced:
    """A number with where it came from and, if sources disagree, what the other says."""

    value: float
    source: str
    conflict: str = ""


@dataclass(frozen=True)
class GpuType:
    """One Cloud Run GPU type (``node_selector.accelerator``)."""

    name: str
    display: str
    vram_bytes: int
    """Device memory as nvidia-smi reports it (llama.cpp/Ollama budgets); vLLM budgets from the smaller
    CUDA-visible total (``cuda_total_bytes``; docs/sizing-evidence.md)."""
    min_cpu: int
    min_memory_gib: int
    default_cpu: int
    default_memory_gib: int
    """Defaults follow Google's samples (L4: 8 vCPU / 32 GiB; RTX: 20 vCPU / 80 GiB)."""
    regions: tuple[str, ...]
    quota_zonal: str
    quota_no_zonal: str
    fp8_kv: bool
    """Hardware FP8 path for vLLM's ``--kv-cache-dtype fp8`` (Ada and newer)."""
    launch_stage: str
    source: str
    notes: str = ""
    cuda_total_bytes: int | None = None
    """Device memory as the CUDA runtime reports it (``cudaMemGetInfo`` / ``torch.cuda.mem_get_info``
    total): what vLLM multiplies by ``--gpu-memory-utilization``. Smaller than nvidia-smi's total by the
    driver's reserve; None means "derive it": ``vram_bytes`` less ``CUDA_RESERVE_DEFAULT_BYTES``."""


GPU_TYPES: dict[str, GpuType] = {
    "nvidia-l4": GpuType(
        name="nvidia-l4",
        display="NVIDIA L4 (24 GB)",
        # nvidia-smi reports 23034 MiB for the 24 GB L4; torch sees 22.0-22.5 GiB (llm-sizing §7).
        vram_bytes=23034 * MIB,
        # CUDA sees 22.03-22.06 GiB of it (torch OOM messages and vLLM's "Free memory on device (…/22.04 GiB)" on
        # L4s with different drivers, docs/sizing-evidence.md); the lowest seen, 22.03 GiB = 22,559 MiB, is used.
        cuda_total_bytes=22559 * MIB,
        min_cpu=4,
        min_memory_gib=16,
        default_cpu=8,
        default_memory_gib=32,
        regions=(
            "us-central1",
            "us-east4",
            "europe-west1",
            "europe-west4",
            "asia-southeast1",
            "asia-south1",
        ),
        quota_zonal="NvidiaL4GpuAllocPerProjectRegion",
        quota_no_zonal="NvidiaL4GpuAllocNoZonalRedundancyPerProjectRegion",
        fp8_kv=True,
        launch_stage="GA",
        source="https://cloud.google.com/run/docs/configuring/services/gpu (facts §1.1, §1.4)",
        notes="asia-south1 is invitation only; one worker-pools page marks us-central1 so too (§9.3).",
    ),
    "nvidia-rtx-pro-6000": GpuType(
        name="nvidia-rtx-pro-6000",
        display="NVIDIA RTX PRO 6000 Blackwell (96 GB)",
        vram_bytes=97887 * MIB,
        # vLLM logs "Free memory on device (94.41/94.97 GiB)" on this card: 638 MiB below nvidia-smi (94.97-95.01 GiB
        # seen; docs/sizing-evidence.md). The lower, 94.97 GiB = 97,249 MiB, is used.
        cuda_total_bytes=97249 * MIB,
        min_cpu=20,
        min_memory_gib=80,
        default_cpu=20,
        default_memory_gib=80,
        regions=("us-central1", "europe-west4", "asia-southeast1", "asia-south2"),
        quota_zonal="NvidiaRtxPro6000GpuAllocPerProjectRegion",
        quota_no_zonal="NvidiaRtxPro6000GpuAllocNoZonalRedundancyPerProjectRegion",
        fp8_kv=True,
        launch_stage="BETA",
        source="https://cloud.google.com/run/docs/configuring/services/gpu (facts §1.1, §1.4)",
        notes="Preview; asia-south2 is invitation only.",
    ),
}

CUDA_RESERVE_DEFAULT_BYTES = 640 * MIB
"""nvidia-smi total minus the CUDA-visible total when a GPU type has no measured ``cuda_total_bytes``: the
largest gap measured (RTX PRO 6000: 638 MiB; L4: 469-475 MiB)."""


def cuda_total_bytes(gpu: GpuType) -> int:
    """Memory the framework sees on ``gpu`` (the base of vLLM's ``--gpu-memory-utilization``)."""
    return gpu.cuda_total_bytes if gpu.cuda_total_bytes is not None else gpu.vram_bytes - CUDA_RESERVE_DEFAULT_BYTES


# --- Instance shape -------------------------------------------------------------------------
# Cloud Run CPU values accepted with a GPU: the provider docstring lists 1,2,4,6,8 for CPU-only
# services; GPU presets go higher (L4 8/12/16, RTX 20/22/24/30; facts §1.1, oded996 presets).
ALLOWED_CPU = (4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32)
MAX_MEMORY_GIB = Sourced(
    value=192,
    source="oded996 presets go to 120 Gi (RTX) and 360 Gi (H100 private preview)",
    conflict="No Google doc states the GPU-instance maximum (facts §9.9); 192 is our cap.",
)

# --- Concurrency ----------------------------------------------------------------------------
CONCURRENCY_MIN = 1
CONCURRENCY_MAX = Sourced(
    value=1000,
    source="https://docs.cloud.google.com/run/docs/about-concurrency (facts §3.1)",
    conflict="Default is 80×vCPU (current doc) vs 80 (older doc); we always set it explicitly.",
)

# --- Startup probe --------------------------------------------------------------------------
PROBE_INITIAL_DELAY_MAX = 240
PROBE_PERIOD_MIN = 1
PROBE_PERIOD_MAX = 240
PROBE_TIMEOUT_MIN = 1
PROBE_FAILURE_THRESHOLD_MIN = 1
PROBE_TIMEOUT_STRICTLY_BELOW_PERIOD = Sourced(
    value=1,
    source="google/cloud/run/v2/k8s.min.proto: timeout 'Must be smaller than period_seconds'",
    conflict="Google's codelab uses timeout=period=240 (facts §9.7); we follow the proto (stricter).",
)
STARTUP_WINDOW_GPU_S = Sourced(
    value=1800,
    source="jobs/healthchecks doc + 2026 cold-start blog: failureThreshold×periodSeconds ≤ 1800 with GPU",
    conflict="Older services docs say 240 s for all services (facts §9.1).",
)
STARTUP_WINDOW_CPU_S = Sourced(value=240, source="services/healthchecks: failureThreshold×periodSeconds ≤ 240 s")

# --- Scaling and request timeout ------------------------------------------------------------
REQUEST_TIMEOUT_MAX_S = 3600
DEFAULT_GPU_QUOTA = Sourced(
    value=3,
    source="observed 'allowed: 3' (pulumi-gcp #3794; codelab feedback #1522)",
    conflict="0 until requested (zonal-redundancy page) vs 7 (2024 preview docs) (facts §9.4).",
)

# --- Networking -----------------------------------------------------------------------------
SUBNET_MIN_PREFIX = 26
"""Direct VPC egress needs a /26 or larger subnet (facts §5.2)."""
DIRECT_VPC_IP_MULTIPLIER = Sourced(
    value=4,
    source="networking best practices: IPs in use ≈ instances × multiplier",
    conflict="One page version says ×2, another ×4 (facts §9.5); ×4 is the safe choice.",
)
DIRECT_VPC_IP_BLOCK = 16
"""Cloud Run reserves addresses in /28 blocks (facts §5.2)."""
PSC_NAME_PATTERN = r"^[a-z][a-z0-9]{0,19}$"
PRIVATE_GOOGLE_ACCESS_RANGES = ("199.36.153.8/30", "199.36.153.4/30")

# --- Cloud Build ----------------------------------------------------------------------------
CLOUD_BUILD_DISK_MAX_GB = Sourced(
    value=1000,
    source="Cloud Build BuildOptions.diskSizeGb: 'maximum disk size is 1000GB'",
    conflict="Private pools document up to 4000 GB (facts §9.8).",
)
CLOUD_BUILD_MACHINE = "E2_HIGHCPU_32"
"""The seed's example machine type for baking models (practice L3)."""


@dataclass(frozen=True)
class LoadingMethodFacts:
    """Read rates of one loading method; feed the startup probe (``sizing/startup.py``).

    ``bytes_per_s`` is the median rate of the published Cloud Run starts with this method
    (docs/startup-evidence.md; ``tests/test_startup_evidence.py`` recomputes it), the expected start;
    ``slow_bytes_per_s`` the slowest published one, which the probe window must cover; ``fast_bytes_per_s``
    the fastest, which the initial delay must stay below."""

    name: str
    bytes_per_s: float
    source: str
    needs: tuple[str, ...] = field(default_factory=tuple)
    slow_bytes_per_s: float = 0.0
    fast_bytes_per_s: float = 0.0

    def __post_init__(self) -> None:
        # A method without a measured spread uses its one rate for all three cases.
        if not self.slow_bytes_per_s:
            object.__setattr__(self, "slow_bytes_per_s", self.bytes_per_s)
        if not self.fast_bytes_per_s:
            object.__setattr__(self, "fast_bytes_per_s", self.bytes_per_s)


LOADING_METHODS: dict[str, LoadingMethodFacts] = {
    "image": LoadingMethodFacts(
        "image",
        0.48 * GIB,
        "9 published baked-image starts (Ollama 0.12.6, L4, gemma3 4b-27b, docs/startup-evidence.md): "
        "median 0.48 GiB/s after the fixed terms, slowest 0.11 (a 12b start of 81 s), fastest 1.16",
        slow_bytes_per_s=0.1 * GIB,
        fast_bytes_per_s=1.17 * GIB,
    ),
    "gcs-fuse": LoadingMethodFacts(
        "gcs-fuse",
        0.05 * GIB,
        "3 published Cloud Storage FUSE starts (Ollama, L4, gemma3 4b-27b, default gcsfuse options, "
        "docs/startup-evidence.md): 0.050-0.052 GiB/s. Our mount options (sequential-read-size-mb=1024, "
        "metadata caches) are not credited: gcsfuse already detects sequential reads and then sends fewer, "
        "larger requests over one TCP connection (storage/docs/gcsfuse-performance-and-best-practices, zh-CN "
        "page, paraphrased), and its "
        "documented lever for one large file read by one thread is parallel download through a file cache "
        "(gcsfuse v2.4.0 release notes), which we do not set; nothing published or measured shows ours faster",
        needs=("Direct VPC egress ALL_TRAFFIC + Private Service Connect (L4)",),
        slow_bytes_per_s=0.049 * GIB,
        fast_bytes_per_s=0.053 * GIB,
    ),
    "gcs-download": LoadingMethodFacts(
        "gcs-download",
        0.047 * GIB,
        "2 published bucket-copy starts (Ollama, L4, `gsutil -m rsync` then load, docs/startup-evidence.md): "
        "0.044-0.051 GiB/s end to end. Our `gcloud storage rsync` is not credited as faster: no published "
        "or measured Cloud Run start shows it",
        needs=("in-memory volume ≥ model bytes", "Direct VPC egress + PSC (L4)"),
        slow_bytes_per_s=0.044 * GIB,
        fast_bytes_per_s=0.052 * GIB,
    ),
    "gcs-stream": LoadingMethodFacts(
        "gcs-stream",
        0.64 * GIB,
        "one published start (vLLM 0.17.2rc1 Run:ai Model Streamer, Gemma 4 31B, RTX PRO 6000, Direct VPC + "
        "Private Google Access, docs/startup-evidence.md): the streamer logged 58.28 GiB in 73 s (0.8 GiB/s); "
        "the start's own total implies 0.64 GiB/s after the fixed terms, which is used",
        needs=("vLLM with runai-model-streamer[gcs] (vllm[runai])", "Direct VPC egress + PSC (L4)"),
    ),
    "internet": LoadingMethodFacts(
        "internet",
        0.039 * GIB,
        "4 published `ollama pull` starts (Ollama, L4, gemma3 4b-27b from registry.ollama.ai, "
        "docs/startup-evidence.md): 0.038-0.043 GiB/s; Hugging Face Hub ~41 MB/s per shard from a VM "
        "(llm-sizing §5) agrees",
        needs=("Cloud NAT (L5)",),
        slow_bytes_per_s=0.037 * GIB,
        fast_bytes_per_s=0.044 * GIB,
    ),
}

DIRECT_VPC_CONNECT_S = Sourced(
    value=34,
    source="the one published Direct VPC start (vLLM on an RTX PRO 6000, docs/startup-evidence.md) took 41 s from "
    "instance start to the engine process against 6-7 s without VPC (15 Ollama starts); the 34 s difference is "
    "counted as Direct VPC set-up in the expected start, before any network read",
    conflict="One start, and its image was larger: the gap may be part image. The doc's 'a minute or more' is the "
    "window's allowance (DIRECT_VPC_WINDOW_S), not the expected time.",
)
DIRECT_VPC_WINDOW_S = Sourced(
    value=60,
    source="run/docs/configuring/vpc-direct-vpc: 'You might experience connection establishment delays of a minute "
    "or more on instance startup when using Direct VPC egress' (facts §3): the probe window allows for it, the "
    "initial delay does not (a start without the delay must not wait for the first probe)",
)
CONTAINER_START_S = Sourced(
    value=7,
    source="GPU instance ready ~5 s + image streaming 1-2 s (services/gpu; cold-start blog); measured: the first "
    "/api/version of 15 scaled-to-zero Ollama services answered in 5.6-11.3 s, median 6.0 s "
    "(pmgledhill102/cloudrun-gpu-demos, docs/startup-evidence.md)",
)
CONTAINER_START_FAST_S = Sourced(value=5.6, source="the fastest of those 15 first /api/version answers")
CONTAINER_START_SLOW_S = Sourced(value=11.3, source="the slowest of those 15 first /api/version answers")


# --- Names, lists and versions other resources impose (issue 21) ------------------------------------------------
NETWORK_TAGS_MAX = Sourced(
    value=64,
    source="https://cloud.google.com/vpc/docs/add-remove-network-tags, Limits: 'Maximum number of tags per VM 64. "
    "All tags for a VM must be unique.'",
)
MANAGED_CERT_DOMAINS_MAX = Sourced(
    value=100,
    source="Google-managed certificates 'support up to 100 non-wildcard domains' "
    "(https://cloud.google.com/kubernetes-engine/docs/how-to/managed-certs, Limitations; the Compute API's "
    "SslCertificateManagedSslCertificate.domains points at the same 'maximum number of domains per Google-managed "
    "SSL certificate', https://cloud.google.com/load-balancing/docs/quotas)",
)
COMPUTE_NAME_MAX = Sourced(
    value=63,
    source="Compute Engine resource names (NEGs, backend services, URL maps, certificates, proxies, forwarding "
    "rules, addresses, subnets) are RFC 1035 labels of 1-63 characters "
    "(https://cloud.google.com/compute/docs/naming-resources)",
)
AUTONAME_SUFFIX = Sourced(
    value=8,
    source="a resource given no name= gets its logical name plus '-' and 7 random characters "
    "(shared/reference/pulumi-gcp-api.md, General facts): 8 characters on top of the logical name",
)
VALKEY_VERSIONS = ("VALKEY_7_2", "VALKEY_8_0", "VALKEY_9_0")
"""Memorystore for Valkey engine versions: "Memorystore for Valkey supports Valkey versions 7.2, 8.0 and 9.0"
(https://cloud.google.com/memorystore/docs/valkey/supported-versions; the API's ``engineVersion`` spells them
``VALKEY_7_2`` …). Older pages list 7.2 and 8.0 only: 9.0 is the newest addition."""
SUBNET_RANGES_DISJOINT = (
    "https://cloud.google.com/vpc/docs/subnets: the primary and secondary IPv4 ranges of all subnets in a VPC "
    "network must be unique and must not overlap (a proxy-only subnet is a subnet of the VPC, "
    "https://cloud.google.com/load-balancing/docs/proxy-only-subnets)"
)
"""Why a proxy-only subnet may not overlap the service's subnet."""


@dataclass(frozen=True)
class NameRule:
    """What a resource accepts as its name or id, and where the name must be unique (issue 21: every name a stack
    derives is checked against the rule of the resource that receives it, before anything registers)."""

    what: str
    pattern: str
    """The whole name must match (``re.fullmatch``)."""
    min_len: int
    max_len: int
    unique_in: str
    """``project`` or ``region`` (within the project): two resources of the stack may not share a name there."""
    source: str


SERVICE_ACCOUNT_ID = NameRule(
    what="service account id",
    pattern=r"[a-z]([-a-z0-9]*[a-z0-9])",
    min_len=6,
    max_len=30,
    unique_in="project",
    source="IAM CreateServiceAccountRequest.account_id: 'unique within a project, must be 6-30 characters long, and "
    "match the regular expression [a-z]([-a-z0-9]*[a-z0-9])' "
    "(https://cloud.google.com/python/docs/reference/iam/latest/google.cloud.iam_admin_v1.types.CreateServiceAccountRequest)",
)
SECRET_ID = NameRule(
    what="Secret Manager secret id",
    pattern=r"[A-Za-z0-9_-]+",
    min_len=1,
    max_len=255,
    unique_in="project",
    source="CreateSecretRequest.secret_id: 'must be unique within the project. A secret ID is a string with a maximum "
    "length of 255 characters and can contain uppercase and lowercase letters, numerals, and the hyphen (-) and "
    "underscore (_) characters' (https://cloud.google.com/python/docs/reference/secretmanager/latest/"
    "google.cloud.secretmanager_v1.types.CreateSecretRequest)",
)
RUN_SERVICE_NAME = NameRule(
    what="Cloud Run service name",
    pattern=r"[a-z]([-a-z0-9]*[a-z0-9])?",
    min_len=1,
    max_len=49,
    unique_in="region",
    source="Cloud Run's API: 'Service name must use only letters, numbers and '-'. Must begin with a letter and cannot "
    "end with a '-'' (https://github.com/jamesward/cloud-run-button/issues/4, the API's fieldViolation); a service "
    "is addressed as projects/<p>/locations/<region>/services/<name>, so the name is unique per region and project; "
    "49 characters: the stricter bound service/settings.py's SERVICE_NAME_PATTERN documents (that older API text "
    "says 63)",
)
AR_REPOSITORY_ID = NameRule(
    what="Artifact Registry repository id",
    pattern=r"[a-z]([-a-z0-9]*[a-z0-9])?",
    min_len=1,
    max_len=63,
    unique_in="region",
    source="registry/__init__.py REPOSITORY_ID_PATTERN (1-63 lowercase letters, digits and hyphens, starting with a "
    "letter); a repository is projects/<p>/locations/<region>/repositories/<id> (pulumi-gcp artifactregistry."
    "Repository: repository_id and location), so the id is unique per region and project",
)
DNS_ZONE_NAME = NameRule(
    what="Cloud DNS zone name",
    pattern=r"[a-z]([-a-z0-9]*[a-z0-9])?",
    min_len=1,
    max_len=63,
    unique_in="project",
    source="a managed zone's name: 'Must be unique within the project. The name must be 1-63 characters long, must "
    "begin with a letter, end with a letter or digit, and only contain lowercase letters, digits or dashes' (Google "
    "API DnsZone.name, https://googleapis.dev/dotnet/Google.Apis.ServiceNetworking.v1/latest/api/"
    "Google.Apis.ServiceNetworking.v1.Data.DnsZone.html; the Cloud Console's 'Zone name must begin with a letter, "
    "end with a letter or digit, and only contain lowercase letters, digits or dashes', quoted in "
    "https://gitlab.com/gitlab-com/business-technology/engineering/tools/hackystack/-/issues/105)",
)
NAME_RULES = (SERVICE_ACCOUNT_ID, SECRET_ID, RUN_SERVICE_NAME, AR_REPOSITORY_ID, DNS_ZONE_NAME)
