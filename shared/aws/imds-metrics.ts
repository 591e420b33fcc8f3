import { type CloudWatchClient, GetMetricDataCommand, type MetricDataQuery } from "@aws-sdk/client-cloudwatch";
import { classifyAwsError } from "./errors.js";

/**
 * The two per-instance metrics EC2 publishes about IMDS (namespace AWS/EC2, dimension InstanceId):
 * - MetadataNoToken: IMDSv1 calls that were answered (tokens optional);
 * - MetadataNoTokenRejected: IMDSv1 calls refused because tokens are required — software that breaks.
 */
export type ImdsMetric = "MetadataNoToken" | "MetadataNoTokenRejected";

/** GetMetricData takes up to 500 queries per call. */
const QUERIES_PER_CALL = 500;

/**
 * Sums an IMDS metric per instance over [start, end): one GetMetricData call per 500 instances. An instance with no
 * datapoints sums to 0 (EC2 publishes nothing while nothing happens).
 */
export async function sumImdsMetric(
  cloudwatch: CloudWatchClient,
  metric: ImdsMetric,
  instanceIds: readonly string[],
  start: Date,
  end: Date,
): Promise<Map<string, number>> {
  const sums = new Map<string, number>(instanceIds.map((id) => [id, 0]));
  // One period over the whole window, rounded up to a whole minute as CloudWatch requires.
  const period = Math.max(60, Math.ceil((end.getTime() - start.getTime()) / 60_000) * 60);
  for (let i = 0; i < instanceIds.length; i += QUERIES_PER_CALL) {
    const chunk = instanceIds.slice(i, i + QUERIES_PER_CALL);
    const queries: MetricDataQuery[] = chunk.map((id, n) => ({
      Id: `m${n}`,
      Label: id,
      MetricStat: {
        Metric: { Namespace: "AWS/EC2", MetricName: metric, Dimensions: [{ Name: "InstanceId", Value: id }] },
        Period: period,
        Stat: "Sum",
      },
      ReturnData: true,
    }));
    let nextToken: string | undefined;
    do {
      try {
        const page = await cloudwatch.send(
          new GetMetricDataCommand({
            MetricDataQueries: queries,
            StartTime: start,
            EndTime: end,
            NextToken: nextToken,
          }),
        );
        for (const result of page.MetricDataResults ?? []) {
          const id = chunk[Number(result.Id?.slice(1))];
          if (id === undefined) continue;
          sums.set(id, (sums.get(id) ?? 0) + (result.Values ?? []).reduce((a, b) => a + b, 0));
        }
        nextToken = page.NextToken;
      } catch (error) {
        throw classifyAwsError(error, "GetMetricData", metric);
      }
    } while (nextToken);
  }
  return sums;
}
