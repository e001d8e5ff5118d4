"""``ResponseCache``: the semantic response cache in front of the GPU service (practice S1).

    caller ──► cache service (CPU Cloud Run) ──miss──► GPU service (Cloud Run + GPU)
                    │ Direct VPC (private ranges)
                    ▼
               Memorystore for Valkey (PSC endpoint in the VPC)

A hit is answered by the CPU service, so it never takes one of the GPU instance's concurrency slots and
never wakes a GPU service that scaled to zero. What the component creates, all parented to it and named
after it:

- **Memorystore for Valkey** (``gcp.memorystore.Instance``), one shard with cluster mode disabled, reached
  through a Private Service Connect endpoint that Memorystore creates in the given network. That needs a
  *service connection policy* for the service class ``gcp-memorystore`` on the network and region
  (https://cloud.google.com/memorystore/docs/valkey/networking); the component creates it unless
  ``create_connection_policy`` is false (one policy per network, region and class). Vector search is built
  into Memorystore for Valkey (https://cloud.google.com/memorystore/docs/valkey/about-vector-search; "only
  instances created after September 13, 2024 have vector search enabled",
  https://cloud.google.com/memorystore/docs/valkey/vector-search-limitations). ``maxmemory-policy`` is
  ``volatile-lru``: every entry carries a TTL, so memory pressure evicts old answers, never the bookkeeping.
- **The cache service** (``cloudrun_v2.Service``, CPU only): the image built from ``container/cache``, the
  GPU service URL, the Valkey endpoint and the cache settings as environment variables, Direct VPC egress on
  the given network/subnetwork so it reaches the Valkey endpoint's private IP
  (https://cloud.google.com/run/docs/configuring/vpc-direct-vpc), an HTTP startup probe on ``/cache/ready``.
- **Two log-based metrics** over the service's structured decision lines: decisions by ``cache``
  (hit/miss/bypass) and ``match``, and the distribution of GPU seconds saved per hit.
- **A runtime identity**, granted ``roles/run.invoker`` on the GPU service only (the service calls it with an ID
  token from the metadata server, https://cloud.google.com/run/docs/authenticating/service-to-service) and
  ``roles/memorystore.dbConnectionUser`` conditioned on its own Valkey instance (below); no other role.
  Invokers of the cache itself only as listed; ``allUsers`` only when asked (and warned).

Secure by default (``valkey_auth: iam``, ``valkey_tls: true``):

- **IAM authentication** (``authorization_mode: IAM_AUTH``): the service sends ``AUTH default <access token>``
  of its own service account on every new connection ("default" is the only supported username,
  https://cloud.google.com/memorystore/docs/valkey/manage-iam-auth; Google's redis-py sample returns
  ``("default", token)`` from a ``CredentialProvider``,
  https://cloud.google.com/memorystore/docs/valkey/client-library-code-samples). The identity gets
  ``roles/memorystore.dbConnectionUser`` (``memorystore.instances.connect``) through a project-level binding
  with an IAM condition on this instance's resource name: pulumi-gcp has no instance-level IAM resource for
  Memorystore for Valkey, and Google documents per-instance access as a ``resource.name`` condition
  (``projects/PROJECT/locations/REGION/instances/INSTANCE_NAME``,
  https://cloud.google.com/memorystore/docs/valkey/manage-iam-auth).
- **In-transit encryption** (``transit_encryption_mode: SERVER_AUTHENTICATION``): TLS to the instance, verified
  against the instance's own CA, which the component reads from ``Instance.managed_server_cas`` (the API's
  ``managedServerCa``; ``gcloud memorystore instances get-certificate-authority`` prints the same) and passes
  to the service. Google recommends it with IAM authentication, because "the AUTH command is sent unencrypted
  unless In Transit Encryption is enabled" (https://cloud.google.com/memorystore/docs/valkey/about-iam-auth).

``valkey_auth: none`` / ``valkey_tls: false`` turn either off (only when asked).
"""

import re
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_gcp as gcp
from pulumi_gcp import cloudrunv2 as run

from cloudrun_gpu.cache.settings import (
    CacheSettings,
    ValkeyAuth,
    ValkeyNodeType,
    VectorSearch,
    VpcEgress,
)
from cloudrun_gpu.errors import ConfigError, ConfigErrors
from cloudrun_gpu.identity import RuntimeIdentity, RuntimeIdentityArgs
from cloudrun_gpu.settings import args_settings, args_types, raise_if

TOKEN = "cloudrun-gpu:index:ResponseCache"
ARGS = "ResponseCacheArgs."
INVOKER_ROLE = "roles/run.invoker"
DB_CONNECTION_ROLE = "roles/memorystore.dbConnectionUser"
"""Grants ``memorystore.instances.connect``: authenticate to an IAM_AUTH instance
(https://cloud.google.com/memorystore/docs/valkey/about-iam-auth)."""
PORT = 8080
READY_PATH = "/cache/ready"
VALKEY_PORT = 6379
"""Memorystore for Valkey's client port (https://cloud.google.com/memorystore/docs/valkey/connect-instance)."""
MEMORYSTORE_SERVICE_CLASS = "gcp-memorystore"
"""The service class of Memorystore's service connection policy (https://cloud.google.com/memorystore/docs/valkey/networking)."""
ENV = {
    "upstream_url": "CACHE_UPSTREAM_URL",
    "upstream_auth": "CACHE_UPSTREAM_AUTH",
    "valkey_host": "CACHE_VALKEY_HOST",
    "valkey_port": "CACHE_VALKEY_PORT",
    "threshold": "CACHE_THRESHOLD",
    "ttl_s": "CACHE_TTL_S",
    "max_entries": "CACHE_MAX_ENTRIES",
    "max_entry_bytes": "CACHE_MAX_ENTRY_BYTES",
    "embedding_model": "CACHE_EMBEDDING_MODEL",
    "tenant_header": "CACHE_TENANT_HEADER",
    "semantic": "CACHE_SEMANTIC",
    "vector_search": "CACHE_VECTOR_SEARCH",
    "store_timeout_s": "CACHE_STORE_TIMEOUT_S",
    "valkey_auth": "CACHE_VALKEY_AUTH",
    "valkey_ca_pem": "CACHE_VALKEY_CA_PEM",
    "metadata_token_url": "CACHE_METADATA_TOKEN_URL",
    "audiences": "CACHE_AUDIENCES",
    "trust_cloud_run_iam": "CACHE_TRUST_CLOUD_RUN_IAM",
    "max_body_bytes": "CACHE_MAX_BODY_BYTES",
    "max_json_depth": "CACHE_MAX_JSON_DEPTH",
    "embed_queue": "CACHE_EMBED_QUEUE",
    "max_entries_per_tenant": "CACHE_MAX_ENTRIES_PER_TENANT",
}
"""The cache service's environment (``container/cache/semcache/config.py`` reads the same names; a test
keeps them equal)."""
LOG_COMPONENT = "semantic-cache"
"""``jsonPayload.component`` of the service's decision log lines (``semcache.app.log``)."""
_NETWORK_ID = re.compile(r"^projects/([^/]+)/global/networks/[^/]+$")


@dataclass
class ResponseCacheArgs:
    """Inputs of :class:`ResponseCache`: what it needs from the stack (the GPU service, the VPC, the image)."""

    region: str
    """Region of the cache service and the Valkey instance (the GPU service's region)."""
    image: pulumi.Input[str]
    """The cache service's image (built from ``container/cache``), e.g. ``<registry_uri>/llm-cache:<tag>``."""
    upstream_url: pulumi.Input[str]
    """The GPU service's URL (``GpuInferenceService(...).url``): where misses go, and the ID token's audience."""
    upstream_service_name: pulumi.Input[str]
    """The GPU service's Cloud Run name (``GpuInferenceService(...).service_name``): the cache's identity gets
    ``roles/run.invoker`` on it."""
    network: pulumi.Input[str]
    """The VPC network id, ``projects/<p>/global/networks/<n>`` (``InferenceNetwork(...).network_id``): Valkey's
    endpoint is created in it and the cache reaches it through Direct VPC."""
    subnetwork: pulumi.Input[str]
    """The subnetwork id for the cache's Direct VPC interface and the Valkey endpoint's IP
    (``InferenceNetwork(...).subnetwork_id``)."""
    settings: CacheSettings
    """The ``cloudrun-gpu:cache`` stack section."""
    project: str | None = None
    """The project; defaults to the network's project (parsed from ``network``), then the provider's."""
    labels: dict[str, str] | None = None
    """Labels on the service and the Valkey instance."""

    def __post_init__(self) -> None:
        # Another Pulumi language passes a plain input bag; anything else is refused naming the argument (issue 21).
        raise_if(args_settings(self, ARGS, {"settings": CacheSettings}))
        raise_if(args_types(self, ARGS, skip=["settings", "region"]))
        errors: list[ConfigError] = []
        if not isinstance(self.region, str) or not re.fullmatch(r"[a-z]+(-[a-z]+)+[0-9]+", self.region):
            errors.append(ConfigError(f"{ARGS}region", self.region, "is not a region name", "use e.g. europe-west1"))
        if not self.settings.enabled:
            errors.append(
                ConfigError(
                    f"{ARGS}settings.enabled",
                    False,
                    "is false, so there is nothing to create",
                    "set settings.enabled true, or do not construct ResponseCache",
                )
            )
        if errors:
            raise ConfigErrors(errors)
        # The cache's own identity is checked here, with the other arguments, not when the component registers
        # (issue 21: every rule runs before the first resource); the component uses this object.
        self.__dict__["_identity"] = RuntimeIdentityArgs(
            account_id=self.settings.account_id, display_name="LLM response cache", project=self.project
        )

    def identity_args(self) -> RuntimeIdentityArgs:
        """The cache's runtime identity, as checked on construction."""
        identity: RuntimeIdentityArgs = self.__dict__["_identity"]
        return identity


def service_env(settings: CacheSettings) -> dict[str, str]:
    """The environment the cache service gets from its settings (the upstream and Valkey come separately)."""
    return {
        ENV["upstream_auth"]: "google-id-token",
        ENV["threshold"]: repr(settings.threshold),
        ENV["ttl_s"]: str(settings.ttl_s),
        ENV["max_entries"]: str(settings.max_entries),
        ENV["max_entry_bytes"]: str(settings.max_entry_bytes),
        ENV["embedding_model"]: settings.embedding_model,
        ENV["tenant_header"]: settings.tenant_header.lower(),
        ENV["semantic"]: "true" if settings.semantic else "false",
        ENV["vector_search"]: str(settings.vector_search),
        ENV["valkey_auth"]: str(settings.valkey_auth),
        ENV["max_body_bytes"]: str(settings.max_body_bytes),
        ENV["max_entries_per_tenant"]: str(settings.max_entries_per_tenant),
        # Custom audiences the callers may mint ID tokens for (the service's own run.app URL is added by the
        # service at start-up from K_SERVICE and the metadata server, semcache.app.cloud_run_audience).
        ENV["audiences"]: ",".join(settings.audiences),
        # Cloud Run verifies the invoker's token and removes its signature before the container sees it
        # (https://cloud.google.com/run/docs/troubleshooting#signature-removed): such a token is proof only
        # while the invoker IAM check is on (invoker_iam_disabled=False below) and no public member may invoke.
        ENV["trust_cloud_run_iam"]: "false" if settings.public else "true",
    }


def _primary_endpoint(endpoints: Any) -> str:
    """The primary endpoint's IP from ``Instance.endpoints`` (``connections[].psc_auto_connection``)."""
    for endpoint in endpoints or []:
        for conn in getattr(endpoint, "connections", None) or []:
            psc = getattr(conn, "psc_auto_connection", None)
            if psc is not None and psc.ip_address and psc.connection_type != "CONNECTION_TYPE_READER":
                return str(psc.ip_address)
    return ""


def ca_bundle(cas: Any) -> str:
    """Every CA certificate of ``Instance.managed_server_cas`` (``[].ca_certs[].certificates[]``, PEM) as one
    bundle: the client trusts all of them, so a CA rotation (a new CA next to the old one) needs no change."""
    pems: list[str] = []
    for ca in cas or []:
        for chain in getattr(ca, "ca_certs", None) or []:
            pems += [str(c).strip() for c in getattr(chain, "certificates", None) or [] if c]
    return "\n".join(pems) + ("\n" if pems else "")


def instance_condition(region: str, instance_id: str) -> str:
    """The IAM condition that limits the connect role to one instance. ``endsWith`` rather than ``==`` on the
    whole name because the name's project segment may be the project id or its number; inside one
    project's policy, region and instance id already name exactly one instance."""
    return f'resource.name.endsWith("/locations/{region}/instances/{instance_id}")'


class ResponseCache(pulumi.ComponentResource):
    """The semantic response cache (S1): a CPU Cloud Run service in front of the GPU service, backed by
    Memorystore for Valkey in the service's VPC."""

    # Only outputs are annotated on the class: the component provider's analyzer turns every class annotation
    # into a schema output (provider/), and a child resource is not one. The children (``instance``,
    # ``connection_policy``, ``service``, ``identity``, ``upstream_invoker``) are typed where they are assigned.
    url: pulumi.Output[str]
    """The cache's URL: point clients here instead of at the GPU service."""
    valkey_host: pulumi.Output[str]
    """The Valkey endpoint's private IP."""
    service_account_member: pulumi.Output[str]
    """``serviceAccount:<email>`` of the cache (e.g. for ``ModelRegistry`` reader_members)."""

    def __init__(self, name: str, args: ResponseCacheArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        if isinstance(args, dict):
            args = ResponseCacheArgs(**args)
        super().__init__(TOKEN, name, None, opts)
        cfg = args.settings
        child = pulumi.ResourceOptions(parent=self)
        network = pulumi.Output.from_input(args.network)
        project: pulumi.Input[str] = (
            args.project
            if args.project is not None
            else network.apply(lambda n: m.group(1) if (m := _NETWORK_ID.match(n or "")) else "")
        )
        labels = {"component": "llm-cache", **(args.labels or {})}

        self.connection_policy: gcp.networkconnectivity.ServiceConnectionPolicy | None = None
        depends: list[pulumi.Resource] = []
        if cfg.create_connection_policy:
            self.connection_policy = gcp.networkconnectivity.ServiceConnectionPolicy(
                f"{name}-memorystore-policy",
                name=f"{cfg.service_name}-memorystore",
                location=args.region,
                service_class=MEMORYSTORE_SERVICE_CLASS,
                description="Lets Memorystore create the Valkey endpoint of the LLM response cache in this network",
                network=args.network,
                psc_config=gcp.networkconnectivity.ServiceConnectionPolicyPscConfigArgs(subnetworks=[args.subnetwork]),
                project=args.project,
                opts=child,
            )
            depends.append(self.connection_policy)

        self.instance: gcp.memorystore.Instance = gcp.memorystore.Instance(
            f"{name}-valkey",
            instance_id=f"{cfg.service_name}-valkey",
            location=args.region,
            mode="CLUSTER_DISABLED",
            shard_count=1,
            replica_count=cfg.valkey_replicas,
            node_type=str(cfg.valkey_node_type),
            engine_version=cfg.valkey_version,
            authorization_mode="IAM_AUTH" if cfg.valkey_auth == ValkeyAuth.IAM else "AUTH_DISABLED",
            transit_encryption_mode="SERVER_AUTHENTICATION" if cfg.valkey_tls else "TRANSIT_ENCRYPTION_DISABLED",
            engine_configs={"maxmemory-policy": "volatile-lru"},
            desired_auto_created_endpoints=[
                gcp.memorystore.InstanceDesiredAutoCreatedEndpointArgs(network=args.network, project_id=project)
            ],
            deletion_protection_enabled=cfg.deletion_protection,
            labels=labels,
            project=args.project,
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends),
        )
        self.valkey_host = self.instance.endpoints.apply(_primary_endpoint)

        self.identity: RuntimeIdentity = RuntimeIdentity(
            f"{name}-identity",
            args.identity_args(),
            opts=child,
        )
        self.upstream_invoker: gcp.cloudrunv2.ServiceIamMember = gcp.cloudrunv2.ServiceIamMember(
            f"{name}-upstream-invoker",
            name=args.upstream_service_name,
            location=args.region,
            role=INVOKER_ROLE,
            member=self.identity.member,
            project=args.project,
            opts=child,
        )

        self.valkey_connect = None
        if cfg.valkey_auth == ValkeyAuth.IAM:
            # The identity is created in the instance's project (both take args.project, else the provider's).
            instance_project = (
                args.project
                if args.project is not None
                else self.identity.email.apply(lambda e: e.split("@", 1)[1].split(".", 1)[0])
            )
            instance_id = f"{cfg.service_name}-valkey"
            self.valkey_connect = gcp.projects.IAMMember(
                f"{name}-valkey-connect",
                project=instance_project,
                role=DB_CONNECTION_ROLE,
                member=self.identity.member,
                condition=gcp.projects.IAMMemberConditionArgs(
                    title=f"only {instance_id}",
                    description="Connect to the LLM response cache's Valkey instance, no other",
                    expression=instance_condition(args.region, instance_id),
                ),
                opts=child,
            )

        env: dict[str, pulumi.Input[str]] = {
            ENV["upstream_url"]: args.upstream_url,
            ENV["valkey_host"]: self.valkey_host,
            ENV["valkey_port"]: str(VALKEY_PORT),
            **service_env(cfg),
        }
        if cfg.valkey_tls:
            env[ENV["valkey_ca_pem"]] = self.instance.managed_server_cas.apply(ca_bundle)
        probe = run.ServiceTemplateContainerStartupProbeHttpGetArgs(path=READY_PATH, port=PORT)
        self.service: gcp.cloudrunv2.Service = gcp.cloudrunv2.Service(
            f"{name}-svc",
            name=cfg.service_name,
            location=args.region,
            ingress=str(cfg.ingress),
            deletion_protection=cfg.deletion_protection,
            invoker_iam_disabled=False,
            custom_audiences=list(cfg.audiences) or None,
            labels=labels,
            template=run.ServiceTemplateArgs(
                service_account=self.identity.email,
                max_instance_request_concurrency=cfg.concurrency,
                scaling=run.ServiceTemplateScalingArgs(
                    min_instance_count=cfg.min_instances, max_instance_count=cfg.max_instances
                ),
                vpc_access=run.ServiceTemplateVpcAccessArgs(
                    egress=str(cfg.vpc_egress),
                    network_interfaces=[
                        run.ServiceTemplateVpcAccessNetworkInterfaceArgs(
                            network=args.network, subnetwork=args.subnetwork
                        )
                    ],
                ),
                containers=[
                    run.ServiceTemplateContainerArgs(
                        name="cache",
                        image=args.image,
                        ports=run.ServiceTemplateContainerPortsArgs(container_port=PORT, name="http1"),
                        envs=[run.ServiceTemplateContainerEnvArgs(name=k, value=v) for k, v in env.items()],
                        resources=run.ServiceTemplateContainerResourcesArgs(
                            limits={"cpu": str(cfg.cpu), "memory": f"{cfg.memory_gib}Gi"},
                            cpu_idle=True,
                            startup_cpu_boost=True,
                        ),
                        startup_probe=run.ServiceTemplateContainerStartupProbeArgs(
                            initial_delay_seconds=0,
                            period_seconds=2,
                            timeout_seconds=1,
                            failure_threshold=30,
                            http_get=probe,
                        ),
                    )
                ],
            ),
            project=args.project,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[self.upstream_invoker, *([self.valkey_connect] if self.valkey_connect else [])],
            ),
        )
        self.invoker_bindings = [
            gcp.cloudrunv2.ServiceIamMember(
                f"{name}-invoker-{member}",
                name=self.service.name,
                location=args.region,
                role=INVOKER_ROLE,
                member=member,
                project=args.project,
                opts=child,
            )
            for member in cfg.invokers
        ]
        if cfg.public:
            warning = f"{name}: invokers include a public member; anyone can call the cache and, through it, the model"
            pulumi.log.warn(warning, self)
        self.metrics = self._log_metrics(name, cfg, args.project) if cfg.log_metrics else []
        self.url = self.service.uri
        self.service_account_member = self.identity.member
        self.register_outputs(
            {"url": self.url, "valkey_host": self.valkey_host, "service_account_member": self.service_account_member}
        )

    def _log_metrics(self, name: str, cfg: CacheSettings, project: str | None) -> list[gcp.logging.Metric]:
        """Two log-based metrics over the service's decision lines: a counter of decisions by ``cache``
        (hit/miss/bypass) and ``match``, and a distribution of the GPU seconds each hit saved
        (https://cloud.google.com/logging/docs/logs-based-metrics)."""
        where = (
            f'resource.type="cloud_run_revision" AND resource.labels.service_name="{cfg.service_name}" '
            f'AND jsonPayload.component="{LOG_COMPONENT}"'
        )
        child = pulumi.ResourceOptions(parent=self)
        label = gcp.logging.MetricMetricDescriptorLabelArgs
        decisions = gcp.logging.Metric(
            f"{name}-decisions",
            name=f"{cfg.service_name}/decisions",
            description="Semantic cache decisions (S1): hit, miss or bypass, and exact or semantic hits",
            filter=f"{where} AND jsonPayload.cache:*",
            metric_descriptor=gcp.logging.MetricMetricDescriptorArgs(
                metric_kind="DELTA",
                value_type="INT64",
                unit="1",
                labels=[
                    label(key="cache", value_type="STRING", description="hit, miss or bypass"),
                    label(key="match", value_type="STRING", description="exact or semantic (hits)"),
                ],
            ),
            label_extractors={
                "cache": "EXTRACT(jsonPayload.cache)",
                "match": "EXTRACT(jsonPayload.match)",
            },
            project=project,
            opts=child,
        )
        saved = gcp.logging.Metric(
            f"{name}-saved-gpu-seconds",
            name=f"{cfg.service_name}/saved_gpu_seconds",
            description="GPU seconds each cache hit saved (the model's time for the stored answer)",
            filter=f'{where} AND jsonPayload.cache="hit"',
            metric_descriptor=gcp.logging.MetricMetricDescriptorArgs(
                metric_kind="DELTA", value_type="DISTRIBUTION", unit="s"
            ),
            value_extractor="EXTRACT(jsonPayload.saved_gpu_s)",
            bucket_options=gcp.logging.MetricBucketOptionsArgs(
                exponential_buckets=gcp.logging.MetricBucketOptionsExponentialBucketsArgs(
                    num_finite_buckets=20, growth_factor=2.0, scale=0.01
                )
            ),
            project=project,
            opts=child,
        )
        return [decisions, saved]


__all__ = [
    "ENV",
    "LOG_COMPONENT",
    "TOKEN",
    "CacheSettings",
    "ResponseCache",
    "ResponseCacheArgs",
    "ValkeyAuth",
    "ValkeyNodeType",
    "VectorSearch",
    "VpcEgress",
    "service_env",
]
