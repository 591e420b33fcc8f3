import { defaultScenario } from "./helpers.js";
import { describeWeatherProperty, WEATHER_SEEDS } from "./weather-property.js";

describeWeatherProperty("the default scenario (an organization)", defaultScenario, WEATHER_SEEDS.organization);
