/**
 * Every client, for the tests and the local runner. Functions import the one module per client they use
 * (shared/aws/clients/), so each bundle carries only the SDK clients its function calls.
 */
export { cloudwatch } from "./cloudwatch.js";
export { dynamodb } from "./dynamodb.js";
export { ec2 } from "./ec2.js";
export { scheduler } from "./scheduler.js";
export { sfn } from "./sfn.js";
export { sns } from "./sns.js";
export { ssm } from "./ssm.js";
