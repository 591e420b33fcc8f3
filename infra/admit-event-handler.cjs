// Which entry serverless.yml deploys as admitEvent, by the same rule as infra/resolve-targets-handler.cjs: the hub
// (organizationId set) resolves events against the organization through Organizations; the single-account stack has
// no directory to read, so its entry carries no Organizations client (admitEvent is every event's first step).
module.exports = async ({ resolveVariable }) => {
  const organizationId = String((await resolveVariable("param:organizationId")) ?? "");
  return organizationId === ""
    ? "functions/admit-event/handler.handler"
    : "functions/admit-event/organization-handler.handler";
};
