// Renders the AWS Chatbot Slack channel only when Slack is configured, and refuses Slack at package time where
// Chatbot does not exist. Why at package time: a Condition alone still leaves the channel in the template with empty
// workspace and channel ids (cfn-lint E3031/E3033), and AWS::Chatbot::SlackChannelConfiguration is missing outside
// the commercial partition (E3006), where a deploy would only fail after creating half the stack.

/** The partition a region belongs to, by AWS's region naming. */
function partitionOf(region) {
  if (region.startsWith("cn-")) return "aws-cn";
  if (region.startsWith("us-gov-")) return "aws-us-gov";
  if (/^[a-z]{2}-iso[a-z]?-/.test(region)) return "aws-iso";
  return "aws";
}

/** Chatbot (now "Amazon Q Developer in chat applications") is offered in the commercial partition only. */
const CHATBOT_PARTITIONS = new Set(["aws"]);

/**
 * The `resources` fragment for the Slack channel: empty unless both ids are set (the same rule as HasSlack in
 * conditions.yml), and an error naming the partition when Slack is asked for where Chatbot does not exist.
 */
function chatbotChannelResources({ slackWorkspaceId, slackChannelId, region, configurationName }) {
  if (slackWorkspaceId === "" || slackChannelId === "") return {};
  const partition = partitionOf(region);
  if (!CHATBOT_PARTITIONS.has(partition)) {
    throw new Error(
      `Slack is configured (slackWorkspaceId, slackChannelId) but region ${region} is in the ${partition} partition, ` +
        "where AWS Chatbot (AWS::Chatbot::SlackChannelConfiguration) does not exist. Leave both Slack params empty " +
        "there and subscribe to the alert topic by email instead.",
    );
  }
  return {
    Resources: {
      SlackChannel: {
        Type: "AWS::Chatbot::SlackChannelConfiguration",
        Condition: "HasSlack",
        Properties: {
          ConfigurationName: configurationName,
          IamRoleArn: { "Fn::GetAtt": ["ChatbotRole", "Arn"] },
          SlackWorkspaceId: slackWorkspaceId,
          SlackChannelId: slackChannelId,
          SnsTopicArns: [{ Ref: "SlackTopic" }],
          // The channel's guardrail is the role's own read-only policy: without one Chatbot applies
          // AdministratorAccess to what channel members may do.
          GuardrailPolicies: [{ Ref: "ChatbotReadOnlyPolicy" }],
          UserRoleRequired: false,
          LoggingLevel: "ERROR",
        },
      },
    },
  };
}

module.exports = async ({ resolveVariable }) =>
  chatbotChannelResources({
    slackWorkspaceId: String(await resolveVariable("param:slackWorkspaceId")),
    slackChannelId: String(await resolveVariable("param:slackChannelId")),
    region: String(await resolveVariable("self:provider.region")),
    configurationName: String(await resolveVariable("self:custom.namePrefix")),
  });
module.exports.chatbotChannelResources = chatbotChannelResources;
module.exports.partitionOf = partitionOf;
