/** A token bucket: what it holds when full, and what it gets back per second. */
export interface BucketSpec {
  capacity: number;
  refillPerSecond: number;
}

/** The EC2 APIs the guard calls, each throttled on its own bucket. */
export type Ec2ThrottledApi =
  | "DescribeInstances"
  | "DescribeImages"
  | "GetInstanceMetadataDefaults"
  | "ModifyInstanceMetadataOptions"
  | "ModifyInstanceMetadataDefaults";

/**
 * EC2's request token buckets for the APIs the guard calls: the one table the simulator throttles by and the bench
 * derives its lower bound from. Source: "Request throttling for the Amazon EC2 API", section "Request token bucket
 * sizes and refill rates" (https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html). Each API is
 * evaluated on its own bucket, per account and Region: throttling DescribeInstances does not slow the modify calls.
 * - ModifyInstanceMetadataOptions (100, 5) and ModifyInstanceMetadataDefaults (2, 2) are "uncategorized actions"
 *   with buckets of their own;
 * - DescribeInstances, DescribeImages and GetInstanceMetadataDefaults are "non-mutating actions" (100, 20).
 *   DescribeInstances without a filter and without pagination draws on a smaller bucket (below).
 */
export const EC2_REQUEST_BUCKETS: Readonly<Record<Ec2ThrottledApi, BucketSpec>> = {
  DescribeInstances: { capacity: 100, refillPerSecond: 20 },
  DescribeImages: { capacity: 100, refillPerSecond: 20 },
  GetInstanceMetadataDefaults: { capacity: 100, refillPerSecond: 20 },
  ModifyInstanceMetadataOptions: { capacity: 100, refillPerSecond: 5 },
  ModifyInstanceMetadataDefaults: { capacity: 2, refillPerSecond: 2 },
};

/**
 * "Unfiltered and unpaginated non-mutating actions" (same page): a DescribeInstances with neither Filters nor
 * MaxResults/NextToken. The guard always filters and paginates, so it never draws on this one.
 */
export const EC2_UNFILTERED_DESCRIBE_INSTANCES_BUCKET: BucketSpec = { capacity: 50, refillPerSecond: 10 };

/**
 * The fastest any caller can make `n` calls of an API from a full bucket: the first `capacity` at once, then
 * `refillPerSecond` a second, so the n-th cannot come before (n - capacity) / refill seconds.
 */
export function bucketLowerBoundSeconds(bucket: BucketSpec, n: number): number {
  return Math.max(0, n - bucket.capacity) / bucket.refillPerSecond;
}
