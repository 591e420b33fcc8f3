import type { DescribeImagesCommandInput, DescribeInstancesCommandInput, Instance } from "@aws-sdk/client-ec2";
import type { Scenario, ScenarioInstance } from "../runner/scenario.js";
import { awsError, currentOptions, type SimContext, type SimInstanceState, setTokens, tick } from "./sim-context.js";

/**
 * The simulated EC2 API of one account and region. What it promises, each as strict as AWS (test/contract.test.ts
 * provokes every row through the real SDK client):
 *
 * | Behaviour | AWS documentation page |
 * | --- | --- |
 * | A modify is not at once visible: DescribeInstances shows the options as they were for a lag the weather draws (default 1-8 s, never zero) | "Eventual consistency in the Amazon EC2 API" |
 * | A new instance is absent from describes, and InvalidInstanceID.NotFound to a modify, until `visibleAfterSeconds` | "Eventual consistency in the Amazon EC2 API" |
 * | A modify on a running instance answers State `pending`, then describes show `applied` once the change is applied | "ModifyInstanceMetadataOptions" (API reference) |
 * | A modify on a stopped or stopping instance is accepted and applied when the instance starts | "Modify instance metadata options for existing instances"; "ModifyInstanceMetadataOptions" |
 * | A modify on a shutting-down or terminated instance: IncorrectInstanceState | "Error codes for the Amazon EC2 API" |
 * | HttpTokens with the endpoint disabled: InvalidParameterCombination | "ModifyInstanceMetadataOptions" |
 * | InstanceIds with MaxResults: InvalidParameterCombination; MaxResults outside 5..1000: InvalidParameterValue | "DescribeInstances" |
 * | At most 200 instances a page here (fewer than AWS's 1000), so every caller follows NextToken | "DescribeInstances" (pagination) |
 * | Per-API token buckets, RequestLimitExceeded with 503 (ec2-throttling.ts) | "Request throttling for the Amazon EC2 API" |
 * | Account IMDS defaults managed by a declarative policy refuse ModifyInstanceMetadataDefaults | "Declarative policies" (AWS Organizations) |
 */
export class SimEc2 {
  readonly modifiedInstanceIds: string[] = [];

  constructor(
    private readonly ctx: SimContext,
    readonly account: Scenario["account"],
    private readonly images: Scenario["images"],
  ) {}

  private visible(s: SimInstanceState, now: number): boolean {
    return now >= s.launchedAt + s.spec.visibleAfterSeconds * 1000;
  }

  /** The metadata options a describe shows now: the stale view while EC2 has not caught up with the latest modify. */
  private describedOptions(s: SimInstanceState, now: number): ReturnType<typeof currentOptions> {
    tick(s, now);
    return s.stale && now < s.stale.until
      ? { httpTokens: s.stale.httpTokens, optionsState: s.stale.optionsState }
      : currentOptions(s);
  }

  async describeInstances(input: DescribeInstancesCommandInput, bucketKey: string) {
    const now = Date.now();
    this.ctx.gate("DescribeInstances", now, bucketKey);
    const filters = describeInstancesFilters(input.Filters);
    if (input.InstanceIds?.length && input.MaxResults !== undefined) {
      throw awsError(
        "InvalidParameterCombination",
        "The parameter instancesSet cannot be used with the parameter maxResults",
      );
    }
    if (input.MaxResults !== undefined && (input.MaxResults < 5 || input.MaxResults > 1000)) {
      throw awsError(
        "InvalidParameterValue",
        `Value ( ${input.MaxResults} ) for parameter maxResults is invalid. Expecting a value between 5 and 1000.`,
      );
    }
    const wanted = input.InstanceIds?.length ? input.InstanceIds : filters.get("instance-id");
    const found: Instance[] = [];
    for (const [id, s] of this.ctx.instances) {
      if (wanted && !wanted.includes(id)) continue;
      tick(s, now);
      if (!this.visible(s, now)) continue;
      const options = this.describedOptions(s, now);
      // The filters see what the describe shows: the same eventually consistent view.
      const instance = this.toInstance(s, options);
      if (!matchesFilters(filters, instance, reservationOf(s.spec))) continue;
      found.push(instance);
    }
    if (input.InstanceIds?.length) {
      const missing = input.InstanceIds.filter((id) => !found.some((i) => i.InstanceId === id));
      if (missing.length)
        throw awsError("InvalidInstanceID.NotFound", `The instance IDs '${missing.join(", ")}' do not exist`);
    }
    // At most MaxResults a page (and the simulation's own cap), so callers must follow NextToken.
    const size = Math.min(input.MaxResults ?? DESCRIBE_PAGE_LIMIT, DESCRIBE_PAGE_LIMIT);
    const start = input.NextToken ? Number(input.NextToken) : 0;
    const page = found.slice(start, start + size);
    const next = start + size < found.length ? String(start + size) : undefined;
    // EC2 answers by reservation: the instances of one launch call are listed together under its ReservationId.
    const reservations = new Map<string, Instance[]>();
    for (const i of page) {
      const r = reservationOf(this.ctx.instances.get(i.InstanceId ?? "")?.spec);
      reservations.set(r, [...(reservations.get(r) ?? []), i]);
    }
    return {
      Reservations: [...reservations].map(([ReservationId, Instances]) => ({ ReservationId, Instances })),
      ...(next ? { NextToken: next } : {}),
    };
  }

  private toInstance(s: SimInstanceState, options: ReturnType<typeof currentOptions>): Instance {
    return {
      InstanceId: s.spec.id,
      ImageId: s.spec.imageId,
      State: { Name: s.state },
      ...(s.spec.platform === "windows" ? { Platform: "Windows" as const } : {}),
      LaunchTime: new Date(s.lastLaunchTime),
      ...(s.spec.clientToken ? { ClientToken: s.spec.clientToken } : {}),
      Tags: Object.entries(s.spec.tags).map(([Key, Value]) => ({ Key, Value })),
      MetadataOptions: {
        State: options.optionsState,
        HttpTokens: options.httpTokens,
        HttpEndpoint: s.httpEndpoint,
        HttpPutResponseHopLimit: 2,
        HttpProtocolIpv6: "disabled",
        InstanceMetadataTags: "disabled",
      },
    };
  }

  async modifyMetadataOptions(input: { InstanceId?: string; HttpTokens?: string }) {
    const now = Date.now();
    this.ctx.gate("ModifyInstanceMetadataOptions", now);
    const s = input.InstanceId ? this.ctx.instances.get(input.InstanceId) : undefined;
    if (!s || !this.visible(s, now)) {
      throw awsError("InvalidInstanceID.NotFound", `The instance ID '${input.InstanceId}' does not exist`);
    }
    tick(s, now);
    if (s.spec.modifyError) throw awsError(s.spec.modifyError, `You are not authorized to perform this operation.`);
    if (s.state === "terminated" || s.state === "shutting-down") {
      throw awsError(
        "IncorrectInstanceState",
        `The instance '${s.spec.id}' is not in a state from which it can be modified.`,
      );
    }
    if (s.httpEndpoint === "disabled" && input.HttpTokens) {
      throw awsError("InvalidParameterCombination", "HttpTokens cannot be set while the HTTP endpoint is disabled.");
    }
    if (input.HttpTokens === "required" || input.HttpTokens === "optional") {
      setTokens(this.ctx, s, input.HttpTokens, now);
      this.modifiedInstanceIds.push(s.spec.id);
    }
    // The call's own answer is not eventually consistent: it reports the options it just set.
    return { InstanceId: s.spec.id, InstanceMetadataOptions: this.toInstance(s, currentOptions(s)).MetadataOptions };
  }

  async describeImages(input: DescribeImagesCommandInput) {
    this.ctx.gate("DescribeImages", Date.now());
    const ids = input.Filters?.find((f) => f.Name === "image-id")?.Values ?? input.ImageIds ?? [];
    // Every AMI the scenario's instances use exists; ImdsSupport is set only where `images` says v2.0.
    const known = new Set([...this.ctx.instances.values()].map((i) => i.spec.imageId));
    return {
      Images: ids
        .filter((id) => known.has(id) || id in this.images)
        .map((id) => ({
          ImageId: id,
          ...(this.images[id]?.imdsSupport === "v2.0" ? { ImdsSupport: "v2.0" as const } : {}),
        })),
    };
  }

  async getMetadataDefaults() {
    this.ctx.gate("GetInstanceMetadataDefaults", Date.now());
    return {
      AccountLevel: {
        ...(this.account.httpTokens !== "no-preference" ? { HttpTokens: this.account.httpTokens } : {}),
        HttpTokensEnforced: this.account.httpTokensEnforced ? ("enabled" as const) : ("disabled" as const),
        ManagedBy: this.account.managedBy,
      },
    };
  }

  async modifyMetadataDefaults(input: { HttpTokens?: string }) {
    this.ctx.gate("ModifyInstanceMetadataDefaults", Date.now());
    if (this.account.managedBy === "declarative-policy") {
      throw awsError("UnsupportedOperation", "The IMDS defaults are managed by a declarative policy.");
    }
    if (input.HttpTokens === "required" || input.HttpTokens === "optional" || input.HttpTokens === "no-preference") {
      this.account.httpTokens = input.HttpTokens;
    }
    return { Return: true };
  }
}

/** The simulated DescribeInstances answers at most this many instances a page, so callers must follow NextToken. */
const DESCRIBE_PAGE_LIMIT = 200;

/**
 * The DescribeInstances filters the simulation evaluates ("DescribeInstances", Amazon EC2 API Reference: `client-token`,
 * `image-id`, `instance-id`, `instance-state-name`, `launch-time` with `*` wildcards, `metadata-options.http-tokens`,
 * `reservation-id`, `tag:<key>`). Any other name is refused, as EC2 refuses a filter it does not know, rather than
 * ignored: an ignored filter would answer with every instance in the account.
 */
function describeInstancesFilters(filters: { Name?: string; Values?: string[] }[] | undefined): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const f of filters ?? []) {
    const name = f.Name ?? "";
    if (!KNOWN_INSTANCE_FILTERS.has(name) && !name.startsWith("tag:")) {
      throw awsError("InvalidParameterValue", `The filter '${name}' is invalid`);
    }
    out.set(name, f.Values ?? []);
  }
  return out;
}

const KNOWN_INSTANCE_FILTERS = new Set([
  "client-token",
  "image-id",
  "instance-id",
  "instance-state-name",
  "launch-time",
  "metadata-options.http-tokens",
  "reservation-id",
]);

/** A scenario instance's reservation: its own unless the scenario groups it with others of one launch. */
function reservationOf(spec: ScenarioInstance | undefined): string {
  return spec?.reservationId ?? `r-${(spec?.id ?? "").replace(/^i-/, "").padEnd(8, "0")}`;
}

/** Every filter must match one of its values (EC2: AND across filters, OR within one); `*` is a wildcard. */
function matchesFilters(filters: Map<string, string[]>, instance: Instance, reservationId: string): boolean {
  const attribute = (name: string): string | undefined => {
    if (name.startsWith("tag:")) return instance.Tags?.find((t) => t.Key === name.slice(4))?.Value;
    switch (name) {
      case "client-token":
        return instance.ClientToken;
      case "image-id":
        return instance.ImageId;
      case "instance-id":
        return instance.InstanceId;
      case "instance-state-name":
        return instance.State?.Name;
      case "launch-time":
        return instance.LaunchTime?.toISOString();
      case "metadata-options.http-tokens":
        return instance.MetadataOptions?.HttpTokens;
      case "reservation-id":
        return reservationId;
      default:
        return undefined;
    }
  };
  for (const [name, values] of filters) {
    const actual = attribute(name);
    if (actual === undefined || !values.some((v) => wildcardMatch(v, actual))) return false;
  }
  return true;
}

function wildcardMatch(pattern: string, value: string): boolean {
  if (!pattern.includes("*") && !pattern.includes("?")) return pattern === value;
  const re = pattern
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${re}$`).test(value);
}
