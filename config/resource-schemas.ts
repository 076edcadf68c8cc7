// The configuration objects, as the CRDs of API group gitopsreverser.io/v1alpha1 hold them in a cluster
// and as a CONFIG_FILE holds them outside one. Field names follow the Go GitOps Reverser's CRDs where
// they are sound, so its users recognise them. This file is the one source of these shapes.
//
// Every object is strict (z.strictObject): a field not listed here is an unknown field, as it is to
// kubectl's strict field validation, so a CONFIG_FILE with a typo or a newer version's field is refused
// naming it (config/schema-issues.ts). Objects read from a cluster go through parseKnownFields instead:
// there the API server already pruned what its CRD does not know, and a CRD newer than this service (an
// upgrade under way, a rollback) must not take objects out of the configuration. The CRDs generated from
// these schemas are the same either way (a structural schema prunes unknown fields by itself).
import { z } from 'zod';
import { OPERATIONS } from '../core/contracts.js';

export const API_VERSION = 'gitopsreverser.io/v1alpha1';

/** DNS-1123 subdomain, what Kubernetes accepts as an object name. */
const dnsName = z
  .string()
  .max(253)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, 'must be a DNS-1123 name (lowercase letters, digits, "-" and ".")');

/** A field accepted as it is and never read. */
const ignored = z.unknown().optional();
/**
 * ObjectMeta's other fields: the API server sets or keeps them, kubectl's strict validation accepts them, and
 * an object exported with `kubectl get -o yaml` carries them. Any other field under metadata is unknown.
 */
const otherObjectMeta = {
  generateName: ignored,
  uid: ignored,
  resourceVersion: ignored,
  generation: ignored,
  creationTimestamp: ignored,
  deletionTimestamp: ignored,
  deletionGracePeriodSeconds: ignored,
  labels: ignored,
  annotations: ignored,
  ownerReferences: ignored,
  finalizers: ignored,
  managedFields: ignored,
  selfLink: ignored,
};
// A cluster-scoped object's namespace is dropped, as the API server drops it.
const clusterScopedMeta = z.strictObject({ name: dnsName, namespace: z.unknown().transform(() => undefined).optional(), ...otherObjectMeta });
const namespacedMeta = z.strictObject({ name: dnsName, namespace: dnsName.default('default'), ...otherObjectMeta });
/** What the service writes (conditions, last commit, backlog): an exported object carries it, kubectl accepts it. */
const status = ignored;

/** The key of an age identity in a Secret, as Flux's kustomize-controller names it (`*.agekey`). */
export const DEFAULT_AGE_KEY = 'age.agekey';

export const SecretKeyRefSchema = z.strictObject({ name: dnsName, namespace: dnsName, key: z.string().min(1) });

/** Client-side request limits towards one source cluster's API server (reads: object fetch, watch lists). */
const ClientLimitsSchema = {
  /** Sustained requests per second to this cluster's API server. */
  qps: z.number().positive().max(10000).default(20),
  /** Requests allowed in a burst above qps. */
  burst: z.int().min(1).max(100000).default(40),
};

export const ClusterProviderSchema = z.strictObject({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal('ClusterProvider'),
  metadata: clusterScopedMeta,
  spec: z
    .strictObject({
      /** The audit webhook of this cluster. Absent for a cluster that is only watched. */
      audit: z
        .strictObject({
          /** Bearer token the API server sends (its audit webhook kubeconfig `token`). */
          tokenSecretRef: SecretKeyRefSchema.optional(),
          /**
           * Client certificate the API server presents (its audit webhook kubeconfig `client-certificate`),
           * checked when the service serves TLS with a client CA (TLS_CLIENT_CA_FILE). Its subject CN must match.
           */
          clientCertificate: z.strictObject({ commonName: z.string().min(1).max(64) }).optional(),
        })
        .refine((audit) => audit.tokenSecretRef !== undefined || audit.clientCertificate !== undefined, {
          message: 'the audit webhook needs tokenSecretRef or clientCertificate',
        })
        .optional(),
      /** When set, events of namespaced objects outside these namespaces are dropped before anything is queued. */
      allowedNamespaces: z.array(dnsName).optional(),
      /**
       * A kubeconfig (Secret key) for reading objects back from this cluster: object fetch for audit events
       * without a body, and watch mode. Absent: the service's own credentials (KUBECONFIG or in-cluster).
       */
      kubeConfigSecretRef: SecretKeyRefSchema.optional(),
      /**
       * Watch mode, for clusters that cannot send audit events (EKS, AKS, GKE): the resource types and
       * namespaces the rules select are watched and fed into the same pipeline.
       */
      watch: z
        .strictObject({
          enabled: z.boolean().default(false),
          /** How long a watch event waits for the audit event of the same change, to name its author. */
          auditJoinGraceSeconds: z.number().min(0).max(300).default(5),
        })
        .optional(),
      ...ClientLimitsSchema,
      /** Audit events this cluster may have accepted per second (all replicas together); beyond it, 429. */
      rateLimit: z
        .strictObject({
          eventsPerSecond: z.number().positive().max(1000000),
          burst: z.int().min(1).max(10000000),
        })
        .optional(),
    })
    .refine((spec) => spec.audit !== undefined || spec.watch?.enabled === true, {
      message: 'a ClusterProvider needs spec.audit (audit webhook) or spec.watch.enabled: true (watch mode)',
    }),
  status,
});

export const GitProviderSchema = z.strictObject({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal('GitProvider'),
  metadata: namespacedMeta,
  spec: z.strictObject({
    url: z.string().min(1),
    /** Secret in the same namespace: `username`/`password` or `bearerToken` (https), `identity`/`known_hosts` (ssh). */
    secretRef: z.strictObject({ name: dnsName }).optional(),
    /** Globs of the branches targets may write to. */
    allowedBranches: z.array(z.string().min(1)).min(1),
  }),
  status,
});

export const GitTargetSchema = z.strictObject({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal('GitTarget'),
  metadata: namespacedMeta,
  spec: z.strictObject({
    providerRef: z.strictObject({ name: dnsName }),
    branch: z.string().min(1),
    /** Base folder in the repository; `.` is the root. */
    path: z.string().default('.'),
    clusterProviderRef: z.strictObject({ name: dnsName }),
    /**
     * What removes a file of an object that no longer exists: `OnEvent` (only real delete events),
     * `Never`, or `Always` (reconciliation also removes files it did not find in the cluster).
     */
    prune: z.enum(['Never', 'OnEvent', 'Always']).default('OnEvent'),
    /** How often this target is reconciled with its cluster, in seconds; 0: only on start, change and demand. */
    reconcileIntervalSeconds: z.int().min(0).max(604800).default(3600),
    /**
     * Secrets you can restore: each Secret is written as `{name}.sops.yaml`, its data and stringData
     * encrypted with SOPS for these age recipients and the service identity's. Absent: values are REDACTED.
     */
    encryption: z
      .strictObject({
        sops: z.strictObject({
          /** age public keys (`age1…`) that can decrypt the files: yours, Flux's. */
          ageRecipients: z.array(z.string().min(1).max(2048)).max(32).default([]),
          /**
           * A Secret in the GitTarget's namespace holding the service's own age identity (`AGE-SECRET-KEY-1…`,
           * key `age.agekey` unless `key` says otherwise). Its recipient can always decrypt; the service needs
           * it to see whether a Secret changed.
           */
          keySecretRef: z.strictObject({ name: dnsName, key: z.string().min(1).default(DEFAULT_AGE_KEY) }),
        }),
      })
      .optional(),
  }),
  status,
});

const ResourceRuleSchema = z.strictObject({
  operations: z.array(z.enum([...OPERATIONS, '*'])).min(1),
  /** `""` is the core group, `*` any group. */
  apiGroups: z.array(z.string()).min(1),
  apiVersions: z.array(z.string()).optional(),
  /** Plural resource names or `*`; subresources never match. */
  resources: z.array(z.string().min(1).refine((r) => !r.includes('/'), 'subresources cannot be selected')).min(1),
});

export const WatchRuleSchema = z.strictObject({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal('WatchRule'),
  metadata: namespacedMeta,
  spec: z.strictObject({
    /** A GitTarget in the rule's own namespace. */
    targetRef: z.strictObject({ name: dnsName }),
    rules: z.array(ResourceRuleSchema).min(1),
  }),
  status,
});

export const ClusterWatchRuleSchema = z.strictObject({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal('ClusterWatchRule'),
  metadata: clusterScopedMeta,
  spec: z.strictObject({
    targetRef: z.strictObject({ name: dnsName, namespace: dnsName }),
    rules: z.array(ResourceRuleSchema).min(1),
  }),
  status,
});

export const SecretSchema = z.strictObject({
  apiVersion: z.literal('v1'),
  kind: z.literal('Secret'),
  metadata: namespacedMeta,
  data: z.record(z.string(), z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'must be base64')).optional(),
  stringData: z.record(z.string(), z.string()).optional(),
  // The v1 Secret's other fields, accepted as kubectl accepts them and never read.
  type: z.string().optional(),
  immutable: z.boolean().optional(),
});

export type ClusterProvider = z.infer<typeof ClusterProviderSchema>;
export type GitProvider = z.infer<typeof GitProviderSchema>;
export type GitTarget = z.infer<typeof GitTargetSchema>;
export type WatchRule = z.infer<typeof WatchRuleSchema>;
export type ClusterWatchRule = z.infer<typeof ClusterWatchRuleSchema>;
export type ResourceRule = z.infer<typeof ResourceRuleSchema>;
export type SecretObject = z.infer<typeof SecretSchema>;

export const SCHEMA_BY_KIND = {
  ClusterProvider: ClusterProviderSchema,
  GitProvider: GitProviderSchema,
  GitTarget: GitTargetSchema,
  WatchRule: WatchRuleSchema,
  ClusterWatchRule: ClusterWatchRuleSchema,
  Secret: SecretSchema,
} as const;
export type ConfigKind = keyof typeof SCHEMA_BY_KIND;
