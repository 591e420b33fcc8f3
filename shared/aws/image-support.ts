import { DescribeImagesCommand, type EC2Client } from "@aws-sdk/client-ec2";
import { classifyAwsError } from "./errors.js";

/**
 * Each AMI's ImdsSupport ("v2.0", or "unset"), remembered per container: a launch of a thousand instances from one
 * AMI asks EC2 once. Filtering on `image-id` (not `ImageIds`) lets a deregistered or unshared AMI simply be absent
 * instead of failing the call; such an AMI is reported as "unknown".
 */
export function imageSupportLookup(): (ec2: EC2Client, imageIds: readonly string[]) => Promise<Map<string, string>> {
  const known = new Map<string, string>();
  return async (ec2, imageIds) => {
    const missing = [...new Set(imageIds)].filter((id) => !known.has(id));
    if (missing.length > 0) {
      try {
        const out = await ec2.send(new DescribeImagesCommand({ Filters: [{ Name: "image-id", Values: missing }] }));
        for (const image of out.Images ?? []) {
          if (image.ImageId) known.set(image.ImageId, image.ImdsSupport ?? "unset");
        }
      } catch (error) {
        throw classifyAwsError(error, "DescribeImages");
      }
      for (const id of missing) if (!known.has(id)) known.set(id, "unknown");
    }
    return new Map(imageIds.map((id) => [id, known.get(id) ?? "unknown"]));
  };
}
