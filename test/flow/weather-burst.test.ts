import { organizationBurstScenario } from "../../local/runner/burst-scenarios.js";
import { describeWeatherProperty, WEATHER_BURST_INSTANCES, WEATHER_SEEDS } from "./weather-property.js";

describeWeatherProperty(
  `an organization burst of ${WEATHER_BURST_INSTANCES} instances`,
  () => organizationBurstScenario(WEATHER_BURST_INSTANCES),
  WEATHER_SEEDS.burst,
);
