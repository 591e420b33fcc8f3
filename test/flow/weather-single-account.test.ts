import { singleAccountScenario } from "./helpers.js";
import { describeWeatherProperty, WEATHER_SEEDS } from "./weather-property.js";

describeWeatherProperty("the single-account scenario", singleAccountScenario, WEATHER_SEEDS.singleAccount);
