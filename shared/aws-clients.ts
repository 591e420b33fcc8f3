import { CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { EC2Client } from "@aws-sdk/client-ec2";
import { SFNClient } from "@aws-sdk/client-sfn";
import { SNSClient } from "@aws-sdk/client-sns";
import { SSMClient } from "@aws-sdk/client-ssm";

/**
 * One client per service, created once per Lambda container. The SDK's own retries are limited to 2 attempts: the
 * state machine owns retrying (with backoff the execution history shows), and a Lambda that sleeps through ten SDK
 * retries hides throttling from the operator and pays for the idle time.
 */
const clientConfig = { maxAttempts: 2 } as const;

export const ec2 = new EC2Client(clientConfig);
export const ssm = new SSMClient(clientConfig);
export const sns = new SNSClient(clientConfig);
export const sfn = new SFNClient(clientConfig);
export const cloudwatch = new CloudWatchClient(clientConfig);
export const dynamodb = new DynamoDBClient(clientConfig);
