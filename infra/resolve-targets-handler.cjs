// Which entry serverless.yml deploys as resolveTargets. The hub (organizationId set) reads the organization through
// Organizations; the single-account stack has no directory to read, and its entry bundles no AWS SDK (resolve-targets
// runs first in every execution, so its cold start is on every event's path).
module.exports = async ({ resolveVariable }) => {
  const organizationId = String((await resolveVariable("param:organizationId")) ?? "");
  return organizationId === ""
    ? "functions/resolve-targets/handler.handler"
    : "functions/resolve-targets/organization-handler.handler";
};
