import type { GetMetricDataCommandInput } from "@aws-sdk/client-cloudwatch";
import { type SimContext, type SimInstanceState, tick } from "./sim-context.js";

/**
 * The simulated CloudWatch metrics of one account and region: the IMDS metrics EC2 publishes per instance.
 *
 * | Behaviour | AWS documentation page |
 * | --- | --- |
 * | AWS/EC2 MetadataNoToken counts IMDSv1 calls answered; MetadataNoTokenRejected those refused once tokens are required | "Instance metrics" (Amazon EC2, "List the available CloudWatch metrics for your instances") |
 * | A metric with no data point in the window answers an empty Values list, StatusCode Complete | "GetMetricData" |
 * | GetMetricData is billed per metric requested, not per call | "Amazon CloudWatch Pricing" |
 */
export class SimCloudWatch {
  /** CloudWatch bills GetMetricData by the metric requested (each query), not by the call. */
  metricsRequested = 0;

  constructor(private readonly ctx: SimContext) {}

  /**
   * AWS/EC2 MetadataNoToken and MetadataNoTokenRejected, Sum by InstanceId: the instance's IMDSv1 callers, integrated
   * over the time its IMDS was optional (answered) or required (refused) within the window.
   */
  async getMetricData(input: GetMetricDataCommandInput) {
    const now = Date.now();
    this.ctx.gate("GetMetricData", now);
    this.metricsRequested += input.MetricDataQueries?.length ?? 0;
    const start = input.StartTime ? new Date(input.StartTime).getTime() : now - 3_600_000;
    const end = Math.min(now, input.EndTime ? new Date(input.EndTime).getTime() : now);
    const results = (input.MetricDataQueries ?? []).map((q) => {
      const metric = q.MetricStat?.Metric;
      const id = metric?.Dimensions?.find((d) => d.Name === "InstanceId")?.Value;
      const s = id ? this.ctx.instances.get(id) : undefined;
      if (!s || metric?.Namespace !== "AWS/EC2") return { Id: q.Id, Label: q.Label, Values: [], Timestamps: [] };
      tick(s, now);
      const counting = metric.MetricName === "MetadataNoTokenRejected" ? "required" : "optional";
      const seconds = secondsWithTokens(s, counting, start, end);
      const sum = Math.round((s.spec.imdsV1CallsPerHour * seconds) / 3600);
      return sum > 0
        ? { Id: q.Id, Label: q.Label, Values: [sum], Timestamps: [new Date(start)], StatusCode: "Complete" as const }
        : { Id: q.Id, Label: q.Label, Values: [], Timestamps: [], StatusCode: "Complete" as const };
    });
    return { MetricDataResults: results };
  }
}

function secondsWithTokens(s: SimInstanceState, tokens: "optional" | "required", start: number, end: number): number {
  let total = 0;
  s.tokenHistory.forEach((h, i) => {
    if (h.tokens !== tokens || s.httpEndpoint === "disabled") return;
    const until = s.tokenHistory[i + 1]?.at ?? Number.POSITIVE_INFINITY;
    total += Math.max(0, Math.min(until, end) - Math.max(h.at, start));
  });
  return total / 1000;
}
