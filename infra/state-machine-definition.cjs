// Hands infra/state-machine.asl.json to CloudFormation as DefinitionString, byte-for-byte as JSON.
// Why not `Definition: ${file(infra/state-machine.asl.json)}`: osls deletes every null under a resource's
// Properties while packaging, which silently turns `"ResultPath": null` (discard the result) into "replace the
// state's input with the result". A string is left alone.
const { readFileSync } = require("node:fs");
const { join } = require("node:path");

module.exports = () => JSON.stringify(JSON.parse(readFileSync(join(__dirname, "state-machine.asl.json"), "utf8")));
