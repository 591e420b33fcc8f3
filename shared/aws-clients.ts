/**
 * Every client, for the tests and the local runner. Functions import the one module per client they use
 * (shared/clients/), so each bundle carries only the SDK clients its function calls.
 */
export { cloudwatch } from "./clients/cloudwatch.js";
export { dynamodb } from "./clients/dynamodb.js";
export { ec2 } from "./clients/ec2.js";
export { sfn } from "./clients/sfn.js";
export { sns } from "./clients/sns.js";
export { ssm } from "./clients/ssm.js";
